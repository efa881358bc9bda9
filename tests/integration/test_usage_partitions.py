"""Usage events partitioned by month on PostgreSQL (`qm usage partition`): the conversion keeps
every event and what an admin sees, new calls land in their month's partition, a month with no
partition yet is moved out of the default one when its partition is made, and archiving drops
whole months' partitions with `qm ledger check` still clean. SQLite refuses, naming why."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from quartermaster.domain.errors import InvalidInput
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import archive, check, partitioning
from quartermaster.store import partitions
from quartermaster.store.models import AuditEvent
from tests.fakes.clock import FixedClock
from tests.integration.usage_history import (
    OPERATOR,
    admin_views,
    events_by_month,
    org_over_two_months,
    reserve,
    spend,
)
from tests.reliability.stack import eventually

on_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def where_rows_live(ctx: Context) -> dict[str, int]:
    """Rows per physical partition, as PostgreSQL stores them."""
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM usage_events GROUP BY 1")
        )
        return dict(rows.all())


async def partition_actions(ctx: Context) -> int:
    async with ctx.uow.begin(write=False) as tx:
        query = select(func.count()).where(AuditEvent.action == "usage.partition")
        return int(await tx.session.scalar(query) or 0)


@on_postgresql
async def test_converting_keeps_every_event_and_new_calls_land_in_their_month(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    before, months = await admin_views(ctx, org.org_id), await events_by_month(ctx)

    done = await partitioning.partition(ctx, OPERATOR)

    assert done.converted
    assert [(p.name, p.first) for p in done.partitions] == [
        ("usage_events_2026_10", "2026-10"),
        ("usage_events_2026_11", "2026-11"),
        ("usage_events_2026_12", "2026-12"),
        ("usage_events_2027_01", "2027-01"),
        ("usage_events_2027_02", "2027-02"),
        ("usage_events_default", None),
    ]
    assert await events_by_month(ctx) == months
    assert await where_rows_live(ctx) == {"usage_events_2026_10": 2, "usage_events_2026_11": 3}
    assert await admin_views(ctx, org.org_id) == before
    await spend(ctx, org.member_ids[0])
    assert (await where_rows_live(ctx))["usage_events_2026_12"] == 1
    assert await check.check(ctx) == []
    again = await partitioning.partition(ctx, OPERATOR)
    assert (again.converted, again.created) == (False, [])
    assert await partition_actions(ctx) == 1  # the second run changed nothing


@on_postgresql
async def test_a_month_without_a_partition_is_moved_out_of_the_default_one(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    await partitioning.partition(ctx, OPERATOR)
    clock.set(datetime(2027, 6, 10, tzinfo=UTC))  # the server was down for months
    await spend(ctx, org.member_ids[0])
    assert (await where_rows_live(ctx))["usage_events_default"] == 1

    created = await partitioning.keep_months_ahead(ctx)

    assert created == [f"usage_events_2027_{month:02d}" for month in (6, 7, 8)]
    rows = await where_rows_live(ctx)
    assert (rows["usage_events_2027_06"], rows.get("usage_events_default")) == (1, None)
    assert await partitioning.keep_months_ahead(ctx) == []
    assert await check.check(ctx) == []


@on_postgresql
async def test_archiving_drops_whole_months_and_the_ledger_still_holds(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    await partitioning.partition(ctx, OPERATOR)
    before, months = await admin_views(ctx, org.org_id), await events_by_month(ctx)

    done = await archive.archive(ctx, OPERATOR, "2026-11")

    assert done.partitions_dropped == ["usage_events_2026_10", "usage_events_2026_11"]
    assert (done.events, done.tokens) == tuple(map(sum, zip(*months.values(), strict=True)))
    listed = await partitioning.partition(ctx, OPERATOR)
    assert [p.first for p in listed.partitions][:2] == ["2026-12", "2027-01"]
    assert await events_by_month(ctx) == {}
    assert await admin_views(ctx, org.org_id) == before
    assert await check.check(ctx) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_refuses_to_partition_and_says_what_works_there(ctx: Context) -> None:
    with pytest.raises(InvalidInput, match="needs PostgreSQL") as refused:
        await partitioning.partition(ctx, OPERATOR)
    assert refused.value.code == "unsupported_database"
    assert await partitioning.keep_months_ahead(ctx) == []


@on_postgresql
async def test_each_server_process_adds_the_months_as_they_come(
    ctx: Context, clock: FixedClock
) -> None:
    await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    await partitioning.partition(ctx, OPERATOR)
    clock.set(datetime(2027, 1, 3, tzinfo=UTC))

    async def march_is_there() -> bool:
        return "usage_events_2027_03" in await partition_names(ctx)

    keeper = asyncio.create_task(partitioning.run_keeper(ctx, interval_s=0.01))
    try:
        await eventually("March 2027's partition", march_is_there, timeout_s=10)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def partition_names(ctx: Context) -> list[str]:
    async with ctx.uow.begin(write=False) as tx:
        return [p.name for p in await partitions.listed(tx.session)]


@on_postgresql
async def test_a_settlement_waiting_on_the_conversion_lands_in_the_new_table(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)  # its settles leave prepared plans behind
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    request_id = await reserve(ctx, org.member_ids[0])
    async with ctx.uow.begin() as tx:
        await partitions.convert(tx.session, partitioning.months_around(clock.now()))
        settling = asyncio.create_task(ledger.settle(ctx, request_id, 100, 50))
        await asyncio.sleep(0.5)
        assert not settling.done()  # waiting on the table's lock
        await tx.commit()
    await asyncio.wait_for(settling, timeout=10)
    assert (await where_rows_live(ctx))["usage_events_2026_12"] == 1
    assert await check.check(ctx) == []
