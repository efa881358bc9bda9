"""Authorization checks that need the database: who administers which organization.

Cross-organization access is refused with NotFound, so an admin cannot even learn whether
another org's member or resource exists.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import NotFound, PermissionDenied
from quartermaster.domain.principal import Principal, require_mfa
from quartermaster.domain.types import Role
from quartermaster.store.models import Membership, Organization, User


async def active_membership(session: AsyncSession, user_id: int) -> Membership | None:
    """The user's current enterprise membership (there is at most one)."""
    return await session.scalar(select(Membership).where(Membership.active_user_id == user_id))


async def org_of(session: AsyncSession, user_id: int) -> int | None:
    """The org whose activity log an event about `user_id` belongs to: their current one, so its
    admins see a member's keys, MFA and card changes (and an operator's resets of them)."""
    membership = await active_membership(session, user_id)
    return membership.org_id if membership else None


async def require_org_admin(session: AsyncSession, principal: Principal, org_id: int) -> None:
    """Operators, or admins of `org_id`, with MFA verified in this session."""
    if principal.is_operator:
        require_mfa(principal)
        if await session.get(Organization, org_id) is None:
            raise NotFound("no such organization", param="org_id")
        return
    membership = (
        await active_membership(session, principal.user_id)
        if principal.user_id is not None
        else None
    )
    if membership is None or membership.org_id != org_id:
        raise NotFound("no such organization", param="org_id")
    if membership.role != Role.ADMIN.value:
        raise PermissionDenied("only an admin of this organization can do this", code="not_admin")
    require_mfa(principal)


async def require_admin_of_user(session: AsyncSession, principal: Principal, user_id: int) -> None:
    """Operators, or admins of the org that `user_id` currently belongs to."""
    if principal.is_operator:
        require_mfa(principal)
        if await session.get(User, user_id) is None:
            raise NotFound("no such user", param="user_id")
        return
    membership = await active_membership(session, user_id)
    if membership is None:
        raise NotFound("no such user in your organization", param="user_id")
    await require_org_admin(session, principal, membership.org_id)
