from decimal import Decimal

from sqlalchemy import func, select, update

from quartermaster.services import demo
from quartermaster.services.catalog import entries
from quartermaster.services.context import Context
from quartermaster.services.identity.api_keys import key_hash
from quartermaster.store.models import (
    ApiKey,
    Membership,
    ModelCatalogEntry,
    Organization,
    UsageCounter,
    UsageEvent,
    UsageMonthly,
)


async def test_seeding_adds_only_missing_models_and_keeps_operator_edits(ctx: Context) -> None:
    async with ctx.uow.begin() as tx:
        await tx.session.execute(
            update(ModelCatalogEntry)
            .where(ModelCatalogEntry.name == "smollm2-135m-instruct")
            .values(input_rate=Decimal("3"))
        )
        await tx.commit()
    assert await entries.seed(ctx, entries.default_specs()) == []
    async with ctx.uow.begin(write=False) as tx:
        rate = await tx.session.scalar(
            select(ModelCatalogEntry.input_rate).where(
                ModelCatalogEntry.name == "smollm2-135m-instruct"
            )
        )
    assert rate == Decimal(3)


async def _totals(ctx: Context) -> tuple[int, int, int, int, int]:
    async with ctx.uow.begin(write=False) as tx:
        s = tx.session
        orgs = await s.scalar(select(func.count()).select_from(Organization))
        members = await s.scalar(select(func.count()).select_from(Membership))
        events = await s.scalar(select(func.sum(UsageEvent.tokens)))
        used = await s.scalar(select(func.sum(UsageCounter.used)))
        rolled = await s.scalar(select(func.sum(UsageMonthly.tokens)))
    return int(orgs or 0), int(members or 0), int(events or 0), int(used or 0), int(rolled or 0)


async def test_demo_loads_once_and_its_numbers_add_up(ctx: Context) -> None:
    first = await demo.load(ctx)
    totals = await _totals(ctx)
    second = await demo.load(ctx)
    assert await _totals(ctx) == totals
    orgs, members, events, used, rolled = totals
    assert (orgs, members) == (1, 6)
    assert events == used == rolled > 0
    assert {login.role for login in first} == {"operator", "admin", "member"}
    assert [login.email for login in first] == [login.email for login in second]
    async with ctx.uow.begin(write=False) as tx:
        old = await tx.session.scalar(
            select(ApiKey).where(ApiKey.key_hash == key_hash(first[1].api_key))
        )
        new = await tx.session.scalar(
            select(ApiKey).where(ApiKey.key_hash == key_hash(second[1].api_key))
        )
    assert old is not None
    assert old.revoked_at is not None
    assert new is not None
    assert new.revoked_at is None
