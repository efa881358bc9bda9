"""Token requests: members ask for more with a reason; admins approve (possibly a different
amount) or deny with a note; the org's auto-approval rule decides small requests at once.
Approving raises the member's cap by the approved amount, within the org's pool.

Errors: NotFound (no membership, no such request or org), InvalidInput (empty reason, amount not
positive, approval past the pool, bad rule), Conflict (already decided, member has left).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.amounts import check_token_amount
from quartermaster.domain.errors import Conflict, InvalidInput, NotFound
from quartermaster.domain.principal import Principal
from quartermaster.domain.requests import AutoApprovalRule, RequestStatus, auto_approves, check_ask
from quartermaster.domain.types import TokenKind
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise.allocations import raise_cap
from quartermaster.services.enterprise.org_pool import OrgMonth, admin_change, get_org, org_month
from quartermaster.services.identity import authz
from quartermaster.store.models import Membership, Organization, TokenRequest, User


@dataclass(frozen=True)
class Decision:
    approve: bool
    amount: int | None = None
    """Approve a different amount than asked (None: the amount asked)."""
    note: str = ""


def request_view(request: TokenRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "user_id": request.user_id,
        "kind": request.kind,
        "amount": request.amount,
        "reason": request.reason,
        "status": request.status,
        "approved_amount": request.approved_amount,
        "auto_approved": request.auto_approved,
        "decision_note": request.decision_note,
        "created_at": request.created_at.isoformat(),
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
    }


def rule_of(org: Organization) -> AutoApprovalRule:
    return AutoApprovalRule(
        org.auto_approve_enabled, org.auto_approve_max_tokens, org.auto_approve_max_pool_pct
    )


def rule_view(rule: AutoApprovalRule) -> dict[str, Any]:
    return {
        "enabled": rule.enabled,
        "max_tokens": rule.max_tokens,
        "max_pool_pct": str(rule.max_pool_pct),
    }


async def ask(
    ctx: Context, principal: Principal, kind: TokenKind, amount: int, reason: str
) -> dict[str, Any]:
    """File a request for the caller; the org's rule may approve it at once."""
    cleaned = check_ask(amount, reason)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        member = await authz.active_membership(session, principal.uid)
        if member is None:
            raise NotFound("you are not a member of an organization", code="no_membership")
        month = await org_month(session, member.org_id, now, lock=True)
        request = TokenRequest(
            org_id=member.org_id,
            membership_id=member.id,
            user_id=member.user_id,
            kind=kind.value,
            amount=amount,
            reason=cleaned,
            status=RequestStatus.PENDING.value,
            created_at=now,
        )
        session.add(request)
        await session.flush()
        await _audit(session, principal, request, "token_request.create", None, now)
        if auto_approves(rule_of(month.org), amount, month.balance(kind)):
            await _grant(session, month, member, request, Decision(True, note="auto-approved"), now)
            request.auto_approved = True
            await _audit(session, principal, request, "token_request.auto_approve", None, now)
        view = request_view(request)
        await tx.commit()
    return view


async def mine(ctx: Context, principal: Principal) -> list[dict[str, Any]]:
    """The caller's requests and their outcomes, newest first."""
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.scalars(
            select(TokenRequest)
            .where(TokenRequest.user_id == principal.uid)
            .order_by(TokenRequest.id.desc())
        )
        return [request_view(row) for row in rows]


async def list_for_org(
    ctx: Context, principal: Principal, org_id: int, status: RequestStatus | None = None
) -> list[dict[str, Any]]:
    """The org's requests, newest first, each with the asking member's email and name (an admin
    decides for a person, not for an id)."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        query = (
            select(TokenRequest, User.email, User.name)
            .join(User, User.id == TokenRequest.user_id)
            .where(TokenRequest.org_id == org_id)
        )
        if status is not None:
            query = query.where(TokenRequest.status == status.value)
        rows = await tx.session.execute(query.order_by(TokenRequest.id.desc()))
        return [request_view(row) | {"email": email, "name": name} for row, email, name in rows]


async def decide(
    ctx: Context, principal: Principal, org_id: int, request_id: int, decision: Decision
) -> dict[str, Any]:
    """Approve (raising the member's cap within the pool) or deny a pending request."""
    now = ctx.clock.now()
    async with admin_change(ctx, principal, org_id) as (tx, month):
        session = tx.session
        request = await session.scalar(
            select(TokenRequest).where(TokenRequest.id == request_id, TokenRequest.org_id == org_id)
        )
        if request is None:
            raise NotFound("no such token request in this organization", param="request_id")
        if request.status != RequestStatus.PENDING.value:
            raise Conflict(f"this request was already {request.status}", code="already_decided")
        if decision.approve:
            member = await session.get(Membership, request.membership_id)
            if member is None or member.removed_at is not None:
                raise Conflict("the member has left the organization", code="member_left")
            await _grant(session, month, member, request, decision, now)
        else:
            _close(request, RequestStatus.DENIED, None, decision.note, now)
        request.decided_by = principal.user_id
        action = "approve" if decision.approve else "deny"
        await _audit(session, principal, request, f"token_request.{action}", decision, now)
        view = request_view(request)
        await tx.commit()
    return view


async def _grant(
    session: AsyncSession,
    month: OrgMonth,
    member: Membership,
    request: TokenRequest,
    decision: Decision,
    now: datetime,
) -> None:
    amount = request.amount if decision.amount is None else decision.amount
    if amount <= 0:
        raise InvalidInput("approve a positive number of tokens, or deny", param="amount")
    check_token_amount(amount, "amount")
    await raise_cap(session, month, member, (TokenKind(request.kind), amount), now)
    _close(request, RequestStatus.APPROVED, amount, decision.note, now)


def _close(
    request: TokenRequest, status: RequestStatus, amount: int | None, note: str, now: datetime
) -> None:
    request.status = status.value
    request.approved_amount = amount
    request.decision_note = note.strip()
    request.decided_at = now


async def _audit(
    session: AsyncSession,
    principal: Principal,
    request: TokenRequest,
    action: str,
    decision: Decision | None,
    now: datetime,
) -> None:
    after = request_view(request)
    entry = audit.AuditEntry(
        action=action,
        actor_user_id=principal.user_id,
        org_id=request.org_id,
        target_type="token_request",
        target_id=request.id,
        before={"status": RequestStatus.PENDING.value} if decision else None,
        after={k: after[k] for k in ("user_id", "kind", "amount", "status", "approved_amount")},
    )
    await audit.record(session, entry, now)


async def get_rule(ctx: Context, principal: Principal, org_id: int) -> dict[str, Any]:
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        return rule_view(rule_of(await get_org(tx.session, org_id)))


async def set_rule(
    ctx: Context, principal: Principal, org_id: int, rule: AutoApprovalRule
) -> dict[str, Any]:
    """Change the org's auto-approval rule; audited with before and after."""
    rule.check()
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        await authz.require_org_admin(session, principal, org_id)
        org = await get_org(session, org_id, lock=True)
        before = rule_view(rule_of(org))
        org.auto_approve_enabled = rule.enabled
        org.auto_approve_max_tokens = rule.max_tokens
        org.auto_approve_max_pool_pct = rule.max_pool_pct
        await session.flush()
        after = rule_view(rule)
        entry = audit.AuditEntry(
            "org.auto_approval", principal.user_id, org_id, "organization", org_id, before, after
        )
        await audit.record(session, entry, now)
        await tx.commit()
    return after
