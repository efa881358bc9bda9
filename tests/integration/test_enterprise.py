"""Enterprise accounts through the services, on SQLite and PostgreSQL: provisioning, the pool,
stale edits, over-assignment after a pool shrink, bulk plans, token requests, membership."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from quartermaster.domain.allocation import BulkRule, Strategy
from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.principal import Principal
from quartermaster.domain.requests import AutoApprovalRule
from quartermaster.domain.types import PurchaseKind, Role, TokenKind
from quartermaster.services.context import Context
from quartermaster.services.enterprise import (
    allocations,
    bulk_allocation,
    membership,
    org_summary,
    provisioning,
    purchases,
    token_requests,
)
from quartermaster.store.models import AuditEvent, Membership, Organization
from tests.factories import BILLING_ADDRESS as ADDRESS
from tests.factories import CAP, add_org, add_user
from tests.fakes.clock import FixedClock

OPS = Principal.command_line()


def member(user_id: int) -> Principal:
    return Principal(user_id=user_id, is_operator=False, mfa_verified=False, via="session")


async def counts(ctx: Context) -> tuple[int, int, int]:
    async with ctx.uow.begin(write=False) as tx:
        s = tx.session
        orgs = await s.scalar(select(func.count()).select_from(Organization))
        members = await s.scalar(select(func.count()).select_from(Membership))
        events = await s.scalar(select(func.count()).select_from(AuditEvent))
    return int(orgs or 0), int(members or 0), int(events or 0)


async def test_provisioning_creates_the_account_and_a_refusal_creates_nothing(
    ctx: Context,
) -> None:
    emails = [f"p{i}@example.com" for i in range(3)]
    for email in emails:
        await add_user(ctx, email)
    taken = await add_org(ctx)
    before = await counts(ctx)
    bad = Provisioning("New", [*emails, taken.member_emails[0]], [], 1_000_000, billing_address=" ")
    with pytest.raises(InvalidInput) as refused:
        await provisioning.provision(ctx, OPS, bad)
    assert len(refused.value.details["problems"]) == 4  # no address, no admin, in another org,
    # half a bundle
    assert await counts(ctx) == before
    request = Provisioning(
        "New", emails, emails[:1], 2_000_000, billing_address=ADDRESS, additional_information="PO 7"
    )
    made = await provisioning.provision(ctx, OPS, request)
    async with ctx.uow.begin(write=False) as tx:
        recorded = await tx.session.scalar(
            select(AuditEvent.after).where(
                AuditEvent.action == "org.provision", AuditEvent.org_id == made["org_id"]
            )
        )
    assert recorded is not None
    assert (recorded["billing_address"], recorded["additional_information"]) == (ADDRESS, "PO 7")
    summary = await org_summary.summary(ctx, OPS, made["org_id"])
    assert (summary["members"], summary["tokens_purchased"]) == (3, 2_000_000)
    assert (summary["tokens_assigned"], summary["tokens_balance"]) == (600_000, 1_400_000)


async def test_pool_exhaustion_is_refused_with_the_balance_left(ctx: Context) -> None:
    org = await add_org(ctx)  # 3 members at 1M of 4M bought
    edit = allocations.CapsEdit(2_000_001, CAP[1], version=2)
    with pytest.raises(InvalidInput, match="only 1,000,000 inference tokens are left"):
        await allocations.set_allocation(ctx, OPS, org.org_id, org.member_ids[0], edit)
    edit = allocations.CapsEdit(2_000_000, CAP[1], version=2)
    saved = await allocations.set_allocation(ctx, OPS, org.org_id, org.member_ids[0], edit)
    assert saved == {"max_inference_tokens": 2_000_000, "max_training_tokens": CAP[1], "version": 3}
    assert (await org_summary.summary(ctx, OPS, org.org_id))["tokens_balance"] == 0


async def test_a_stale_edit_gets_409_and_the_first_admins_values_survive(ctx: Context) -> None:
    org = await add_org(ctx)
    target = org.member_ids[0]
    first = allocations.CapsEdit(500_000, 0, version=2)
    second = allocations.CapsEdit(700_000, 50_000, version=2)
    await allocations.set_allocation(ctx, OPS, org.org_id, target, first)
    with pytest.raises(Conflict) as refused:
        await allocations.set_allocation(ctx, OPS, org.org_id, target, second)
    assert refused.value.details["current"] == {
        "max_inference_tokens": 500_000,
        "max_training_tokens": 0,
        "version": 3,
    }
    rows = await membership.list_members(ctx, OPS, org.org_id)
    assert [r["max_inference_tokens"] for r in rows if r["user_id"] == target] == [500_000]


async def test_a_shrunken_pool_leaves_the_org_over_assigned_until_fixed(
    ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    topup = purchases.Order(2_000_000)
    await purchases.buy(ctx, OPS, org.org_id, PurchaseKind.TOPUP, topup)
    raised = allocations.CapsEdit(3_000_000, CAP[1], version=2)
    await allocations.set_allocation(ctx, OPS, org.org_id, org.member_ids[0], raised)
    clock.advance(days=30)  # December: the November top-up is gone
    summary = await org_summary.summary(ctx, OPS, org.org_id)
    assert summary["over_assigned"]
    assert (summary["current_month"], summary["tokens_balance"]) == ("2026-12", -1_000_000)
    bump = allocations.CapsEdit(CAP[0] + 1, CAP[1], version=2)
    with pytest.raises(InvalidInput) as refused:
        await allocations.set_allocation(ctx, OPS, org.org_id, org.member_ids[1], bump)
    assert refused.value.code == "over_assigned"
    lower = allocations.CapsEdit(2_000_000, CAP[1], version=3)
    await allocations.set_allocation(ctx, OPS, org.org_id, org.member_ids[0], lower)
    assert not (await org_summary.summary(ctx, OPS, org.org_id))["over_assigned"]


async def test_bulk_apply_writes_exactly_the_previewed_plan(ctx: Context) -> None:
    org = await add_org(ctx, members=3)
    rule = BulkRule(TokenKind.INFERENCE, Strategy.EVEN, maximum=900_000)
    plan = await bulk_allocation.preview(ctx, OPS, org.org_id, rule)
    assert {row["after"] for row in plan["rows"]} == {900_000}
    applied = await bulk_allocation.apply(ctx, OPS, org.org_id, rule, plan["plan_hash"])
    assert applied == plan
    rows = await membership.list_members(ctx, OPS, org.org_id)
    assert [(r["user_id"], r["max_inference_tokens"]) for r in rows] == [
        (row["user_id"], row["after"]) for row in plan["rows"]
    ]
    assert (await org_summary.summary(ctx, OPS, org.org_id))["tokens_balance"] == plan[
        "balance_after"
    ]


async def test_bulk_apply_is_refused_when_anything_changed_since_the_preview(
    ctx: Context,
) -> None:
    org = await add_org(ctx)
    rule = BulkRule(TokenKind.TRAINING, Strategy.PERCENTAGE, percent=Decimal(30))
    plan = await bulk_allocation.preview(ctx, OPS, org.org_id, rule)
    edit = allocations.CapsEdit(CAP[0], 0, version=2)
    await allocations.set_allocation(ctx, OPS, org.org_id, org.member_ids[0], edit)
    with pytest.raises(Conflict, match="preview again"):
        await bulk_allocation.apply(ctx, OPS, org.org_id, rule, plan["plan_hash"])
    rows = await membership.list_members(ctx, OPS, org.org_id)
    assert [r["max_training_tokens"] for r in rows] == [CAP[1], 0, CAP[1]]


async def test_token_requests_auto_approve_within_the_rule_and_wait_otherwise(
    ctx: Context,
) -> None:
    org = await add_org(ctx)  # 4M bought, 3M assigned
    rule = AutoApprovalRule(True, max_tokens=200_000, max_pool_pct=Decimal(5))
    await token_requests.set_rule(ctx, OPS, org.org_id, rule)
    asker = member(org.member_ids[0])
    small = await token_requests.ask(ctx, asker, TokenKind.INFERENCE, 200_000, "a report")
    large = await token_requests.ask(ctx, asker, TokenKind.INFERENCE, 200_001, "a bigger one")
    assert (small["status"], small["auto_approved"]) == ("approved", True)
    assert large["status"] == "pending"
    approved = await token_requests.decide(
        ctx, OPS, org.org_id, large["id"], token_requests.Decision(True, 100_000, "half now")
    )
    assert (approved["approved_amount"], approved["decision_note"]) == (100_000, "half now")
    mine = await token_requests.mine(ctx, asker)
    assert [r["status"] for r in mine] == ["approved", "approved"]
    rows = await membership.list_members(ctx, OPS, org.org_id)
    assert rows[1]["max_inference_tokens"] == CAP[0] + 300_000
    with pytest.raises(Conflict, match="already approved"):
        await token_requests.decide(
            ctx, OPS, org.org_id, large["id"], token_requests.Decision(False)
        )


async def test_an_approval_past_the_pool_is_refused_and_a_denial_is_seen(ctx: Context) -> None:
    org = await add_org(ctx)
    asker = member(org.member_ids[1])
    ask = await token_requests.ask(ctx, asker, TokenKind.TRAINING, 800_000, "embeddings")
    with pytest.raises(InvalidInput, match="only 700,000 training tokens are left"):
        await token_requests.decide(ctx, OPS, org.org_id, ask["id"], token_requests.Decision(True))
    await token_requests.decide(
        ctx, OPS, org.org_id, ask["id"], token_requests.Decision(False, note="next month")
    )
    seen = (await token_requests.mine(ctx, asker))[0]
    assert (seen["status"], seen["decision_note"]) == ("denied", "next month")


async def test_membership_keeps_an_admin_and_history(ctx: Context) -> None:
    org = await add_org(ctx, members=2)
    admin = org.admin_ids[0]
    with pytest.raises(Conflict, match="last admin"):
        await membership.update_member(
            ctx, OPS, org.org_id, admin, membership.MemberChanges(role=Role.MEMBER)
        )
    changes = membership.MemberChanges(role=Role.ADMIN, paid=False, banned=True)
    changed = await membership.update_member(ctx, OPS, org.org_id, org.member_ids[0], changes)
    assert (changed["role"], changed["paid"], changed["banned"]) == ("admin", False, True)
    await membership.remove_member(ctx, OPS, org.org_id, org.member_ids[1])
    summary = await org_summary.summary(ctx, OPS, org.org_id)
    assert (summary["members"], summary["tokens_assigned"]) == (2, 2 * CAP[0])
    with pytest.raises(Conflict, match="at least 2 members"):
        await membership.remove_member(ctx, OPS, org.org_id, org.member_ids[0])
    await membership.add_member(ctx, OPS, org.org_id, org.member_emails[1])
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.scalars(
            select(Membership).where(Membership.user_id == org.member_ids[1])
        )
        assert [m.removed_at is None for m in rows] == [False, True]
        actions = set(await tx.session.scalars(select(AuditEvent.action)))
    assert {"org.provision", "member.update", "member.remove", "member.add"} <= actions
