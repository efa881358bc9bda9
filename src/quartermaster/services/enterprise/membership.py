"""Who is in an organization: add, remove, promote/demote, paid/unpaid, ban/unban (org admins
and operators). Removal keeps the membership row (its usage history stays readable) and frees
the user to join another enterprise; the removed member's caps stop counting against the pool.

Errors: NotFound (org or member, also for other orgs), InvalidInput (unregistered user, terms not
accepted, no room in the pool for the minimum), Conflict (already a member, in another
enterprise, the last admin, the last two members).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.allocation import check_fits
from quartermaster.domain.enterprise import MIN_MEMBERS
from quartermaster.domain.errors import Conflict, InvalidInput, NotFound
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import Role
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise.org_pool import admin_change
from quartermaster.services.identity import authz
from quartermaster.services.identity.accounts import find_user_by_email
from quartermaster.store.models import Allocation, Membership, Organization, User


@dataclass(frozen=True)
class MemberChanges:
    """Fields to change on a member; None leaves a field as it is."""

    role: Role | None = None
    paid: bool | None = None
    banned: bool | None = None


async def join(
    session: AsyncSession, org: Organization, user_id: int, role: Role, now: datetime
) -> Membership:
    """A new active membership with the org's minimum inference cap and no training tokens."""
    member = Membership(
        org_id=org.id, user_id=user_id, active_user_id=user_id, role=role.value, joined_at=now
    )
    session.add(member)
    await session.flush()
    session.add(
        Allocation(
            membership_id=member.id,
            org_id=org.id,
            max_inference_tokens=org.min_inference_allocation,
            max_training_tokens=0,
            updated_at=now,
        )
    )
    await session.flush()
    return member


async def active_member(session: AsyncSession, org_id: int, user_id: int) -> Membership:
    """The user's active membership in `org_id`; others are not visible (NotFound)."""
    member = await session.scalar(
        select(Membership).where(Membership.active_user_id == user_id, Membership.org_id == org_id)
    )
    if member is None:
        raise NotFound("no such member in this organization", param="user_id")
    return member


async def _count(session: AsyncSession, org_id: int, role: Role | None = None) -> int:
    query = select(func.count()).where(Membership.org_id == org_id, Membership.removed_at.is_(None))
    if role is not None:
        query = query.where(Membership.role == role.value)
    return int(await session.scalar(query) or 0)


async def _record(
    session: AsyncSession,
    principal: Principal,
    member: Membership,
    action: str,
    now: datetime,
    **change: Any,
) -> None:
    entry = audit.AuditEntry(
        action=action,
        actor_user_id=principal.user_id,
        org_id=member.org_id,
        target_type="user",
        target_id=member.user_id,
        **change,
    )
    await audit.record(session, entry, now)


async def add_member(
    ctx: Context, principal: Principal, org_id: int, email: str, role: Role = Role.MEMBER
) -> dict[str, Any]:
    """Add a registered user who accepted the terms and belongs to no other enterprise."""
    now = ctx.clock.now()
    async with admin_change(ctx, principal, org_id) as (tx, month):
        session = tx.session
        user = await find_user_by_email(session, email)
        if user is None:
            raise InvalidInput(f"{email} is not registered; ask them to register first", "email")
        if user.terms_accepted_at is None:
            raise InvalidInput(f"{email} has not accepted the terms of use", param="email")
        current = await authz.active_membership(session, user.id)
        if current is not None:
            where = "this organization" if current.org_id == org_id else "another enterprise"
            raise Conflict(f"{email} is already in {where}", param="email", code="already_member")
        minimum = month.org.min_inference_allocation
        check_fits(month.inference, 0, minimum, month.period)
        member = await join(session, month.org, user.id, role, now)
        after = {"email": user.email, "role": role.value, "max_inference_tokens": minimum}
        await _record(session, principal, member, "member.add", now, after=after)
        await tx.commit()
    return {"user_id": user.id, "email": user.email, "role": role.value}


async def remove_member(ctx: Context, principal: Principal, org_id: int, user_id: int) -> None:
    """End a membership; the row, its allocation and its usage stay for history."""
    now = ctx.clock.now()
    async with admin_change(ctx, principal, org_id) as (tx, _month):
        session = tx.session
        member = await active_member(session, org_id, user_id)
        if member.role == Role.ADMIN.value and await _count(session, org_id, Role.ADMIN) == 1:
            raise Conflict("cannot remove the last admin; promote another first", code="last_admin")
        if await _count(session, org_id) <= MIN_MEMBERS:
            raise Conflict(
                f"an enterprise account keeps at least {MIN_MEMBERS} members; add one first",
                code="too_few_members",
            )
        member.removed_at, member.active_user_id = now, None
        await session.flush()
        before = {"role": member.role}
        await _record(session, principal, member, "member.remove", now, before=before)
        await tx.commit()


def _changed(member: Membership, changes: MemberChanges) -> tuple[dict[str, Any], dict[str, Any]]:
    wanted = {
        "role": changes.role.value if changes.role else None,
        "paid": changes.paid,
        "banned": changes.banned,
    }
    after = {k: v for k, v in wanted.items() if v is not None and v != getattr(member, k)}
    return {k: getattr(member, k) for k in after}, after


async def update_member(
    ctx: Context, principal: Principal, org_id: int, user_id: int, changes: MemberChanges
) -> dict[str, Any]:
    """Promote/demote (never the last admin), mark paid/unpaid, ban/unban; audited together."""
    now = ctx.clock.now()
    async with admin_change(ctx, principal, org_id) as (tx, _month):
        session = tx.session
        member = await active_member(session, org_id, user_id)
        before, after = _changed(member, changes)
        demoting = after.get("role") == Role.MEMBER.value
        if demoting and await _count(session, org_id, Role.ADMIN) == 1:
            raise Conflict("cannot demote the last admin; promote another first", code="last_admin")
        for name, value in after.items():
            setattr(member, name, value)
        if after:
            await session.flush()
            await _record(
                session, principal, member, "member.update", now, before=before, after=after
            )
        view = {"user_id": user_id, "role": member.role, "paid": member.paid}
        view["banned"] = member.banned
        await tx.commit()
    return view


async def list_members(ctx: Context, principal: Principal, org_id: int) -> list[dict[str, Any]]:
    """The user table: identity, MFA/CAC status, role, paid, banned, caps and their version."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        rows = await tx.session.execute(
            select(Membership, User, Allocation)
            .join(User, User.id == Membership.user_id)
            .join(Allocation, Allocation.membership_id == Membership.id)
            .where(Membership.org_id == org_id, Membership.removed_at.is_(None))
            .order_by(Membership.id)
        )
        return [member_row(m, u, a) for m, u, a in rows]


def member_row(member: Membership, user: User, allocation: Allocation) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "email": user.email,
        "name": user.name,
        "role": member.role,
        "paid": member.paid,
        "banned": member.banned,
        "mfa_enabled": user.mfa_enabled_at is not None,
        "cac_linked": user.cac_subject_dn is not None,
        "max_inference_tokens": allocation.max_inference_tokens,
        "max_training_tokens": allocation.max_training_tokens,
        "version": allocation.version,
        "joined_at": member.joined_at.isoformat(),
    }
