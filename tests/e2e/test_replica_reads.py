"""The org's metrics read from a hot standby (`QM_DATABASE_REPLICA_URL`): with the standby's
replay paused, the user table, statistics, activity log and exports show what the standby has
while the primary has more (so they read the standby), an admin removed on the primary is
refused at once (the check reads the primary), and once replay resumes the pages show what the
primary shows. With the standby down, the pages fail closed, metered calls go on, and /healthz
stays 200 while it names the replica's problem.

The primary and standby are this test's own (tests/e2e/postgres_cluster.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bench import qm_stack

from quartermaster import bootstrap
from quartermaster.domain.errors import NotFound
from quartermaster.domain.member_table import MemberQuery
from quartermaster.domain.principal import Principal
from quartermaster.http.errors import DATABASE_UNREACHABLE
from quartermaster.services import health
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership
from quartermaster.services.metrics import exports, member_stats
from quartermaster.settings import Settings
from quartermaster.store import migrate
from tests.databases import seed_catalog
from tests.e2e.postgres_cluster import (  # noqa: F401 - the fixture
    PostgresCluster,
    Replication,
    primary_and_standby,
)
from tests.factories import OrgFixture, add_org
from tests.fakes.clock import FixedClock
from tests.integration.usage_history import OPERATOR, admin_views, spend
from tests.reliability.stack import eventually

DATABASE = "qm_replica_reads"


@pytest.fixture
def urls(
    primary_and_standby: tuple[PostgresCluster, PostgresCluster],  # noqa: F811 - imported above
) -> tuple[str, str]:
    """The primary's and the standby's URLs of one migrated, seeded database (removed with the
    clusters)."""
    primary, standby = primary_and_standby
    database = qm_stack.create_database(primary.dsn, DATABASE)
    migrate.upgrade(database.url)
    asyncio.run(seed_catalog(database.url))
    return database.url, database.url.replace(f":{primary.port}/", f":{standby.port}/")


@pytest.fixture
async def contexts(urls: tuple[str, str]) -> AsyncIterator[tuple[Context, Context]]:
    """One context reading metrics from the standby, one from the primary, on one clock."""
    primary_url, standby_url = urls
    clock = FixedClock()
    clock.set(datetime(2026, 11, 3, tzinfo=UTC))
    split = bootstrap.build_context(
        Settings(database_url=primary_url, database_replica_url=standby_url), clock=clock
    )
    plain = bootstrap.build_context(Settings(database_url=primary_url), clock=clock)
    try:
        yield split, plain
    finally:
        await bootstrap.close(split)
        await bootstrap.close(plain)


async def standby_sql(ctx: Context, statement: str) -> Any:
    assert ctx.reports is not None
    async with ctx.reports.engine.connect() as connection:
        return (await connection.exec_driver_sql(statement)).scalar()


async def caught_up(ctx: Context) -> bool:
    """Whether the standby has replayed everything the primary has written."""
    async with ctx.uow.engine.connect() as connection:
        written = (await connection.exec_driver_sql("SELECT pg_current_wal_lsn()::text")).scalar()
    replayed = await standby_sql(ctx, f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn")
    return bool(replayed)


async def what_admins_read(ctx: Context, org: OrgFixture) -> dict[str, Any]:
    export = await exports.users_with_tokens(ctx, OPERATOR, org.org_id)
    csv = "".join([chunk async for chunk in exports.csv_chunks(export)])
    return {**await admin_views(ctx, org.org_id), "csv": csv}


async def test_the_pages_read_the_standby_and_the_permission_check_the_primary(
    contexts: tuple[Context, Context],
) -> None:
    split, plain = contexts
    org = await add_org(plain, admins=2, members=2)
    await spend(plain, org.member_ids[0])
    await eventually("the standby replays the org", lambda: caught_up(split))
    before = await what_admins_read(split, org)
    assert before == await what_admins_read(plain, org)

    await standby_sql(split, "SELECT pg_wal_replay_pause()")
    await spend(plain, org.member_ids[1])
    removed = org.admin_ids[1]
    await membership.remove_member(plain, OPERATOR, org.org_id, removed)

    assert await what_admins_read(split, org) == before  # the standby's view, a call behind
    assert await what_admins_read(plain, org) != before
    former_admin = Principal(removed, is_operator=False, mfa_verified=True, via="session")
    with pytest.raises(NotFound):  # as for any org one is not in; the standby still lists them
        await member_stats.member_stats(split, former_admin, org.org_id, MemberQuery())
    await asyncio.sleep(0.1)  # the last change the standby replayed is at least this old
    assert (await health.check(split))["replica_lag_s"] >= 0.1
    await standby_sql(split, "SELECT pg_wal_replay_resume()")
    await eventually("the standby replays the call", lambda: caught_up(split))
    assert await what_admins_read(split, org) == await what_admins_read(plain, org)
    assert (await health.check(split))["replica_lag_s"] == 0


@pytest.mark.parametrize(  # a synchronous standby that is down would hold every commit
    "primary_and_standby", [Replication(synchronous=False)], indirect=True
)
async def test_with_the_standby_down_the_pages_fail_closed_and_calls_go_on(
    primary_and_standby: tuple[PostgresCluster, PostgresCluster],  # noqa: F811 - imported above
    contexts: tuple[Context, Context],
) -> None:
    split, _ = contexts
    standby = primary_and_standby[1]
    org = await add_org(split, members=2)
    assert (await health.check(split))["replica"] == "ok"
    standby.stop("immediate")
    for _ in range(2):  # a pooled connection the stop closed, then a new one refused
        with pytest.raises(DATABASE_UNREACHABLE):  # what the API answers with 503
            await admin_views(split, org.org_id)
    await spend(split, org.member_ids[0])
    async with split.uow.engine.connect() as connection:
        events = (await connection.exec_driver_sql("SELECT count(*) FROM usage_events")).scalar()
    assert events == 1
    state = await health.check(split)
    assert state["status"] == "ok"
    assert state["replica"] == (
        f"unreachable at 127.0.0.1:{standby.port}: nothing accepts connections there"
    )
