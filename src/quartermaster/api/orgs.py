"""Org administration under /api/orgs/{org_id}: summary, members, allocations, bulk plans,
token requests and the auto-approval rule. For the org's admins (MFA verified) and operators.

The admin check is a router-level dependency, so a refused caller is turned away before the
body is even validated; every service checks again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from quartermaster.domain.allocation import BulkRule, Strategy
from quartermaster.domain.requests import AutoApprovalRule, RequestStatus
from quartermaster.domain.types import Role, TokenKind
from quartermaster.http.deps import Caller, Ctx
from quartermaster.http.fields import Tokens
from quartermaster.services.enterprise import (
    allocations,
    bulk_allocation,
    membership,
    org_summary,
    provisioning,
    purchases,
    token_requests,
)


async def org_admin(org_id: int, ctx: Ctx, caller: Caller) -> None:
    await provisioning.require_admin(ctx, caller, org_id)


router = APIRouter(
    prefix="/api/orgs/{org_id}", tags=["organization"], dependencies=[Depends(org_admin)]
)


class NewMemberBody(BaseModel):
    email: str = Field(max_length=320)
    role: Role = Role.MEMBER


class MemberChangesBody(BaseModel):
    role: Role | None = None
    paid: bool | None = None
    banned: bool | None = None


class AllocationBody(BaseModel):
    max_inference_tokens: Tokens
    max_training_tokens: Tokens
    version: int = Field(ge=1, description="The version you loaded; a stale one gets 409.")


class BulkBody(BaseModel):
    kind: TokenKind = TokenKind.INFERENCE
    strategy: Strategy
    amount: Tokens | None = Field(default=None, description="Per member, for `fixed`.")
    percent: Decimal | None = Field(default=None, description="Of the pool, for `percentage`.")
    minimum: Tokens | None = None
    maximum: Tokens | None = None

    def rule(self) -> BulkRule:
        return BulkRule(
            self.kind, self.strategy, self.amount, self.percent, self.minimum, self.maximum
        )


class ApplyBody(BulkBody):
    plan_hash: str = Field(min_length=64, max_length=64)


class DecisionBody(BaseModel):
    amount: Tokens | None = Field(default=None, description="Approve this many instead.")
    note: str = Field(default="", max_length=2000)


class RuleBody(BaseModel):
    enabled: bool
    max_tokens: Tokens = 0
    max_pool_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)


@router.get("")
async def summary(org_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Purchased, assigned and balance of each kind this month; members; `over_assigned`."""
    return await org_summary.summary(ctx, caller, org_id)


@router.get("/members")
async def members(org_id: int, ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    return await membership.list_members(ctx, caller, org_id)


@router.post("/members", status_code=201)
async def add_member(org_id: int, body: NewMemberBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Add a registered user; they start with the org's minimum inference allocation."""
    return await membership.add_member(ctx, caller, org_id, body.email, body.role)


@router.patch("/members/{user_id}")
async def change_member(
    org_id: int, user_id: int, body: MemberChangesBody, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    """Promote/demote, mark paid/unpaid, ban/unban."""
    changes = membership.MemberChanges(body.role, body.paid, body.banned)
    return await membership.update_member(ctx, caller, org_id, user_id, changes)


@router.delete("/members/{user_id}", status_code=204)
async def remove_member(org_id: int, user_id: int, ctx: Ctx, caller: Caller) -> None:
    """End a membership; its history stays."""
    await membership.remove_member(ctx, caller, org_id, user_id)


@router.put("/members/{user_id}/allocation")
async def set_allocation(
    org_id: int, user_id: int, body: AllocationBody, ctx: Ctx, caller: Caller
) -> dict[str, int]:
    """Both caps in one atomic save; 409 with the current values if someone saved first."""
    edit = allocations.CapsEdit(body.max_inference_tokens, body.max_training_tokens, body.version)
    return await allocations.set_allocation(ctx, caller, org_id, user_id, edit)


@router.post("/allocations/preview")
async def preview_bulk(org_id: int, body: BulkBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Every member's before/after, the resulting balance and the plan's hash; writes nothing."""
    return await bulk_allocation.preview(ctx, caller, org_id, body.rule())


@router.post("/allocations/apply")
async def apply_bulk(org_id: int, body: ApplyBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Apply the previewed plan; 409 `plan_changed` if anything changed since the preview."""
    return await bulk_allocation.apply(ctx, caller, org_id, body.rule(), body.plan_hash)


@router.get("/token-requests")
async def list_requests(
    org_id: int, ctx: Ctx, caller: Caller, status: RequestStatus | None = None
) -> list[dict[str, Any]]:
    return await token_requests.list_for_org(ctx, caller, org_id, status)


@router.post("/token-requests/{request_id}/approve")
async def approve(
    org_id: int, request_id: int, body: DecisionBody, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    decision = token_requests.Decision(True, body.amount, body.note)
    return await token_requests.decide(ctx, caller, org_id, request_id, decision)


@router.post("/token-requests/{request_id}/deny")
async def deny(
    org_id: int, request_id: int, body: DecisionBody, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    decision = token_requests.Decision(False, None, body.note)
    return await token_requests.decide(ctx, caller, org_id, request_id, decision)


@router.get("/auto-approval")
async def get_rule(org_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return await token_requests.get_rule(ctx, caller, org_id)


@router.put("/auto-approval")
async def set_rule(org_id: int, body: RuleBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    rule = AutoApprovalRule(body.enabled, body.max_tokens, body.max_pool_pct)
    return await token_requests.set_rule(ctx, caller, org_id, rule)


@router.get("/purchases")
async def list_purchases(org_id: int, ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    return await purchases.list_purchases(ctx, caller, org_id)
