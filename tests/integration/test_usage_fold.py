"""Closed months folded into summaries: the org's statistics and the user table sorted by usage
say what they said before the fold, take in a call settled a moment ago, and stay exact when a
late settlement books into a folded month, a closed month still has a hold pending, the clock
is set back behind the fold, or the demo books history into folded months."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from quartermaster.domain.member_table import USAGE_COLUMNS, MemberQuery
from quartermaster.domain.routes import Route
from quartermaster.services import demo, ledger
from quartermaster.services.context import Context
from quartermaster.services.enterprise import provisioning
from quartermaster.services.ledger import check, fold
from quartermaster.services.metrics import member_stats, token_stats
from quartermaster.store.models import FoldedOrgUsage
from tests.factories import OrgFixture, add_org
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, EMBEDDING
from tests.integration.usage_history import (
    OPERATOR,
    admin_views,
    org_over_two_months,
    reserve,
    spend,
)


async def _folded_org(ctx: Context, clock: FixedClock) -> OrgFixture:
    """That org with October and November folded on 10 December."""
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    assert await fold.fold(ctx) == "2026-11"
    return org


async def test_folded_months_read_as_before_and_a_new_call_shows_at_once(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 12, 2, 9, tzinfo=UTC))
    unfolded = await admin_views(ctx, org.org_id)
    assert await fold.fold(ctx) == "2026-11"
    assert await fold.fold(ctx) is None  # already there
    assert await admin_views(ctx, org.org_id) == unfolded
    await spend(ctx, org.member_ids[0])
    await spend(ctx, org.member_ids[0])
    await spend(ctx, org.member_ids[0])
    await spend(ctx, org.member_ids[0])
    after = await admin_views(ctx, org.org_id)
    months = {m["period"]: m for m in after["stats"]["months"]}
    assert months["2026-10"]["inference_tokens"] == 150
    assert months["2026-11"]["inference_requests"] == 3
    assert months["2026-12"]["inference_tokens"] == 4 * 150
    assert after["total_tokens"][0] == (org.member_ids[0], 150 + 150 + 600)
    assert after["inference_previous_month"][0] == (org.member_ids[1], 450)
    assert {m["model"]: m["tokens"] for m in after["stats"]["models"]}[CHAT] == 150 * 8
    assert await check.check(ctx) == []


async def test_a_late_settlement_into_a_folded_month_is_counted(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    member = org.member_ids[1]
    clock.set(datetime(2026, 11, 30, 23, 50, tzinfo=UTC))
    request_id = await reserve(ctx, member, hold_ttl_s=60)
    clock.set(datetime(2026, 12, 5, tzinfo=UTC))
    assert await ledger.sweep_expired(ctx) == 1
    assert await fold.fold(ctx) == "2026-11"
    settled = await ledger.settle(ctx, request_id, 100, 50)
    assert (settled.late, settled.period) == (True, "2026-11")
    views = await admin_views(ctx, org.org_id)
    november = {m["period"]: m for m in views["stats"]["months"]}["2026-11"]
    assert (november["inference_tokens"], november["inference_requests"]) == (600, 4)
    assert views["total_tokens"][0] == (member, 600)
    assert await check.check(ctx) == []
    await _refold(ctx)
    assert await admin_views(ctx, org.org_id) == views


async def test_a_fold_keeps_each_route_and_a_late_settlement_its_own(
    ctx: Context, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 10, 2, tzinfo=UTC))
    org = await add_org(ctx, members=1)
    member = org.member_ids[0]
    clock.set(datetime(2026, 10, 20, tzinfo=UTC))
    for route in (Route.CHAT, Route.MESSAGES, Route.MESSAGES):
        await ledger.settle(ctx, await reserve(ctx, member, route=route), 100, 50)
    ingest = await reserve(ctx, member, EMBEDDING, route=Route.DATASETS)
    await ledger.settle(ctx, ingest, 300, 0)
    late = await reserve(ctx, member, hold_ttl_s=60, route=Route.RESPONSES)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    assert await ledger.sweep_expired(ctx) == 1
    unfolded = await admin_views(ctx, org.org_id)
    assert await fold.fold(ctx) == "2026-11"
    assert await admin_views(ctx, org.org_id) == unfolded
    async with ctx.uow.begin(write=False) as tx:
        folded = await tx.session.execute(select(FoldedOrgUsage.route, FoldedOrgUsage.tokens))
        assert dict(folded.all()) == {"chat.completions": 150, "messages": 300, "datasets": 150}
    assert (await ledger.settle(ctx, late, 100, 50)).late
    routes = (await admin_views(ctx, org.org_id))["stats"]["routes"]
    assert routes == [
        {"route": "messages", "kind": "inference", "tokens": 300, "requests": 2},
        {"route": "chat.completions", "kind": "inference", "tokens": 150, "requests": 1},
        {"route": "datasets", "kind": "training", "tokens": 150, "requests": 1},
        {"route": "responses", "kind": "inference", "tokens": 150, "requests": 1},
    ]
    assert await check.check(ctx) == []


async def _refold(ctx: Context) -> None:
    async with ctx.uow.begin() as tx:
        await fold.forget(tx.session)
        await tx.commit()
    assert await fold.fold(ctx) is not None


async def test_a_closed_month_with_a_hold_pending_waits_for_it(
    ctx: Context, clock: FixedClock
) -> None:
    org = await org_over_two_months(ctx, clock)
    clock.set(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    request_id = await reserve(ctx, org.member_ids[0])
    clock.set(datetime(2026, 12, 3, tzinfo=UTC))
    assert await fold.fold(ctx) is None  # its settlement would book into November
    settled = await ledger.settle(ctx, request_id, 100, 50)  # not swept yet: on time
    assert (settled.late, settled.period) == (False, "2026-11")
    assert await fold.fold(ctx) == "2026-11"
    views = await admin_views(ctx, org.org_id)
    assert views["inference_previous_month"][0] == (org.member_ids[1], 450)
    assert dict(views["total_tokens"])[org.member_ids[0]] == 150 + 150 + 150
    assert await check.check(ctx) == []


async def test_a_clock_set_back_behind_the_fold_reads_every_month_live(
    ctx: Context, clock: FixedClock
) -> None:
    org = await _folded_org(ctx, clock)
    clock.set(datetime(2026, 11, 20, tzinfo=UTC))
    await spend(ctx, org.member_ids[0])  # on time, into a month the fold holds
    views = await admin_views(ctx, org.org_id)
    november = {m["period"]: m for m in views["stats"]["months"]}["2026-11"]
    assert november["inference_tokens"] == 600
    assert views["total_tokens"][0] == (org.member_ids[1], 450)
    assert views["total_tokens"][1] == (org.member_ids[0], 450)


async def test_a_fold_a_month_behind_still_counts_the_month_between(
    ctx: Context, clock: FixedClock
) -> None:
    """No fold since December closed: the total reads December (between the fold and the last
    closed month) from the counters as well as January (after it)."""
    org = await _folded_org(ctx, clock)
    first, second = org.member_ids
    clock.set(datetime(2026, 12, 20, tzinfo=UTC))
    await spend(ctx, first)
    clock.set(datetime(2027, 1, 10, tzinfo=UTC))
    await spend(ctx, first)
    views = await admin_views(ctx, org.org_id)
    assert views["total_tokens"][:2] == [(first, 300 + 150 + 150), (second, 450)]
    assert await check.check(ctx) == []


async def test_a_fold_that_disagrees_with_the_roll_ups_fails_the_ledger_check(
    ctx: Context, clock: FixedClock
) -> None:
    org = await _folded_org(ctx, clock)
    async with ctx.uow.begin() as tx:
        await tx.session.execute(
            update(FoldedOrgUsage)
            .where(FoldedOrgUsage.org_id == org.org_id, FoldedOrgUsage.period == "2026-11")
            .values(requests=FoldedOrgUsage.requests + 1)
        )
        await tx.commit()
    stats = await token_stats.org_statistics(ctx, OPERATOR, org.org_id)
    assert stats["months"][1]["inference_requests"] == 4  # what the pages read is the fold
    found = await check.check(ctx)
    assert [(d.invariant.value, d.expected, d.found) for d in found] == [
        ("fold_matches_rollups", 3, 4)
    ]
    assert found[0].where.endswith(":requests")


async def test_the_demo_history_is_counted_after_a_fold(ctx: Context, clock: FixedClock) -> None:
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    assert await fold.fold(ctx) == "2026-11"
    await demo.load(ctx)
    org_id = await provisioning.find_org(ctx, OPERATOR, demo.DEMO_ORG)
    stats = await token_stats.org_statistics(ctx, OPERATOR, org_id)
    assert sum(m["total_tokens"] for m in stats["months"][:-1]) > 0
    assert await check.check(ctx) == []
    assert await fold.fold(ctx) == "2026-11"
    assert await token_stats.org_statistics(ctx, OPERATOR, org_id) == stats
    assert await check.check(ctx) == []


async def test_every_usage_sort_pages_and_filters_like_the_whole_table_sorted(
    ctx: Context, clock: FixedClock
) -> None:
    org = await _folded_org(ctx, clock)
    await spend(ctx, org.member_ids[0])
    whole = (await member_stats.member_stats(ctx, OPERATOR, org.org_id, MemberQuery()))["members"]
    for column in USAGE_COLUMNS:
        for descending in (False, True):
            for email in (None, "member"):
                rows = [m for m in whole if email is None or email in m["email"]]
                rows.sort(key=lambda m: (m[column.value], m["user_id"]), reverse=descending)
                for offset in range(len(rows)):
                    query = MemberQuery(column, descending, email, limit=1, offset=offset)
                    page = await member_stats.member_stats(ctx, OPERATOR, org.org_id, query)
                    assert page["members"] == rows[offset : offset + 1], (column, offset)
                    assert page["total"] == len(rows)
