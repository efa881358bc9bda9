"""The storage layer keeps exact decimals and aware datetimes, and rolls back uncommitted work."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from quartermaster.services.context import Context
from quartermaster.store import migrate
from quartermaster.store.db import lost_prepared_statement
from quartermaster.store.models import Base, ModelCatalogEntry, Organization


async def test_database_is_at_the_newest_schema(ctx: Context) -> None:
    assert await migrate.current_revision(ctx.uow.engine) == migrate.head_revision()


async def test_rates_round_trip_exactly(ctx: Context) -> None:
    async with ctx.uow.begin() as tx:
        tx.session.add(
            ModelCatalogEntry(
                name="tiny-rate",
                kind="chat",
                provider="local",
                upstream_model="x",
                input_rate=Decimal("0.0000001"),
                output_rate=Decimal("123456789.123456789"),
                training_rate=Decimal(0),
                created_at=ctx.clock.now(),
            )
        )
        await tx.commit()
    async with ctx.uow.begin(write=False) as tx:
        entry = await tx.session.scalar(
            select(ModelCatalogEntry).where(ModelCatalogEntry.name == "tiny-rate")
        )
    assert entry is not None
    assert entry.input_rate == Decimal("0.0000001")
    assert entry.output_rate == Decimal("123456789.123456789")


async def test_datetimes_come_back_aware_in_utc(ctx: Context) -> None:
    created = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=5)))
    async with ctx.uow.begin() as tx:
        tx.session.add(Organization(name="Tz Org", created_at=created))
        await tx.commit()
    async with ctx.uow.begin(write=False) as tx:
        stored = await tx.session.scalar(
            select(Organization.created_at).where(Organization.name == "Tz Org")
        )
    assert stored == created
    assert stored is not None
    assert stored.tzinfo == UTC


async def test_work_that_is_not_committed_is_rolled_back(ctx: Context) -> None:
    class Refused(Exception):
        pass

    async def refused_halfway() -> None:
        async with ctx.uow.begin() as tx:
            tx.session.add(Organization(name="Half Written", created_at=ctx.clock.now()))
            await tx.session.flush()
            raise Refused

    with pytest.raises(Refused):
        await refused_halfway()
    async with ctx.uow.begin() as tx:
        tx.session.add(Organization(name="Never Committed", created_at=ctx.clock.now()))
    async with ctx.uow.begin(write=False) as tx:
        count = await tx.session.scalar(select(func.count()).select_from(Organization))
    assert count == 0


async def test_migrations_create_exactly_what_the_models_describe(ctx: Context) -> None:
    def differences(connection: Connection) -> list[object]:
        migration = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(migration, Base.metadata))

    async with ctx.uow.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == [], "a model changed without a migration: run tools/new_migration.py"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_vanished_prepared_statement_is_told_from_other_errors(ctx: Context) -> None:
    """What a pooler in transaction mode causes (docs/deploy.md), recognised through
    SQLAlchemy's wrapping, and nothing else is mistaken for it."""
    failures = []
    for statement in ("DEALLOCATE qm_never_prepared", "SELECT 1 / 0"):
        with pytest.raises(DBAPIError) as failed:
            async with ctx.uow.begin(write=False) as tx:
                await tx.session.execute(text(statement))
        failures.append(lost_prepared_statement(failed.value))
    assert failures == [True, False]
