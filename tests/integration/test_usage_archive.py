"""Archiving old months (`qm usage archive`): their events go, what an admin sees of those
months stays, `qm ledger check` still proves every invariant, and a month that is open or still
has a call in flight is refused with nothing changed. On both databases, a plain table; the
partitioned one is in test_usage_partitions.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from quartermaster.domain.errors import Conflict, InvalidInput, PermissionDenied
from quartermaster.domain.principal import Principal
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import archive, check, fold
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


async def archive_actions(ctx: Context) -> list[dict[str, object] | None]:
    async with ctx.uow.begin(write=False) as tx:
        query = select(AuditEvent.after).where(AuditEvent.action == "usage.archive")
        return list(await tx.session.scalars(query.order_by(AuditEvent.id)))


async def test_archiving_october_keeps_its_totals_and_the_ledger_provable(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    late = await reserve(ctx, org.member_ids[0], hold_ttl_s=60)  # 3 Nov, settled late below
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    assert await ledger.sweep_expired(ctx) == 1
    assert (await ledger.settle(ctx, late, 100, 50)).late
    assert await fold.fold(ctx) == "2026-11"
    await spend(ctx, org.member_ids[1])  # December, open
    before = await admin_views(ctx, org.org_id)
    months = await events_by_month(ctx)
    assert set(months) == {"2026-10", "2026-11", "2026-12"}

    done = await archive.archive(ctx, OPERATOR, "2026-11")

    assert (done.events, done.tokens) == (
        months["2026-10"][0] + months["2026-11"][0],
        months["2026-10"][1] + months["2026-11"][1],
    )
    assert await events_by_month(ctx) == {"2026-12": months["2026-12"]}
    assert await admin_views(ctx, org.org_id) == before
    assert await check.check(ctx) == []
    assert await fold.fold(ctx) == "2026-11"  # forgotten by the archive, rebuilt without its events
    assert await admin_views(ctx, org.org_id) == before
    assert await check.check(ctx) == []
    assert await archive_actions(ctx) == [
        {
            "through": "2026-11",
            "events": done.events,
            "tokens": done.tokens,
            "partitions_dropped": [],
        }
    ]


async def test_archiving_again_finds_nothing_and_the_check_still_holds(
    ctx: Context, clock: FixedClock
) -> None:
    await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    first = await archive.archive(ctx, OPERATOR, "2026-10")
    again = await archive.archive(ctx, OPERATOR, "2026-10")
    assert first.events == 2
    assert (again.events, again.tokens) == (0, 0)
    assert await check.check(ctx) == []


async def test_an_open_month_a_pending_call_and_a_member_are_refused_with_nothing_changed(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 11, 20, tzinfo=UTC))
    await reserve(ctx, org.member_ids[0])  # in flight in November
    clock.set(datetime(2026, 12, 1, 12, tzinfo=UTC))
    months = await events_by_month(ctx)
    with pytest.raises(InvalidInput, match="latest month that can be archived now is 2026-10"):
        await archive.archive(ctx, OPERATOR, "2026-11")  # not yet closed in every zone
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    with pytest.raises(InvalidInput, match="not in YYYY-MM form"):
        await archive.archive(ctx, OPERATOR, "November")
    with pytest.raises(Conflict, match="1 call"):
        await archive.archive(ctx, OPERATOR, "2026-11")
    admin = Principal(user_id=org.admin_ids[0], is_operator=False, mfa_verified=True, via="api")
    with pytest.raises(PermissionDenied):
        await archive.archive(ctx, admin, "2026-10")
    assert await events_by_month(ctx) == months
    assert await archive_actions(ctx) == []
    assert await check.check(ctx) == []
