"""Provisioning enterprise accounts (operators): the org, its members and admins, its first
purchase, all in one transaction, or nothing at all with every problem named.

Each member starts with the org's minimum inference allocation (200,000 by default) and no
training tokens; the rest of the pool is the balance the admins hand out.

Errors: PermissionDenied (operator_required, mfa_required), InvalidInput (provisioning_refused,
with `details["problems"]`), Conflict (someone joined another enterprise meanwhile), NotFound.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.enterprise import Person, Provisioning, Roster, check_provisioning, roster
from quartermaster.domain.errors import Conflict, NotFound
from quartermaster.domain.periods import zone
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.domain.types import PurchaseKind, Role
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership, purchases
from quartermaster.services.identity import authz
from quartermaster.store.models import Membership, Organization, User


async def _people(session: AsyncSession, emails: list[str]) -> dict[str, Person]:
    """The registered accounts among `emails`, with the enterprise each already belongs to."""
    rows = await session.execute(
        select(User, Organization.name)
        .outerjoin(Membership, Membership.active_user_id == User.id)
        .outerjoin(Organization, Organization.id == Membership.org_id)
        .where(User.email_normalized.in_(emails))
    )
    return {
        user.email_normalized: Person(
            user.email_normalized, user.id, user.terms_accepted_at is not None, org_name
        )
        for user, org_name in rows
    }


async def provision(ctx: Context, principal: Principal, request: Provisioning) -> dict[str, Any]:
    """Create the enterprise account, or refuse with every problem and create nothing."""
    require_operator(principal)
    zone(request.timezone)
    names = roster(request)
    now = ctx.clock.now()
    try:
        async with ctx.uow.begin() as tx:
            session = tx.session
            people = await _people(session, names.members + names.admins)
            taken = await session.scalar(
                select(Organization.id).where(Organization.name == request.name.strip())
            )
            check_provisioning(request, names, people, name_taken=taken is not None)
            org = await _create(ctx, session, principal, request, names, people, now)
            await tx.commit()
    except IntegrityError:
        raise Conflict(
            "a member joined another enterprise or the name was taken meanwhile; try again",
            code="provisioning_conflict",
        ) from None
    return {"org_id": org.id, "name": org.name, "members": names.members, "admins": names.admins}


async def _create(
    ctx: Context,
    session: AsyncSession,
    principal: Principal,
    request: Provisioning,
    names: Roster,
    people: dict[str, Person],
    now: datetime,
) -> Organization:
    org = Organization(
        name=request.name.strip(),
        billing_address=request.billing_address.strip(),
        additional_information=request.additional_information.strip(),
        timezone=request.timezone,
        min_inference_allocation=request.min_inference_allocation,
        created_at=now,
    )
    session.add(org)
    await session.flush()
    for email in names.members:
        role = Role.ADMIN if email in names.admins else Role.MEMBER
        await membership.join(session, org, people[email].user_id, role, now)
    order = purchases.Order(request.inference_tokens, request.training_tokens, request.term)
    actor = principal.user_id
    await purchases.add_line(session, org, PurchaseKind.SUBSCRIPTION, order, ctx.prices, actor, now)
    entry = audit.AuditEntry(
        action="org.provision",
        actor_user_id=actor,
        org_id=org.id,
        target_type="organization",
        target_id=org.id,
        after={
            "name": org.name,
            "billing_address": org.billing_address,
            "additional_information": org.additional_information,
            "members": names.members,
            "admins": names.admins,
        },
    )
    await audit.record(session, entry, now)
    return org


async def list_orgs(ctx: Context, principal: Principal) -> list[dict[str, Any]]:
    """Every enterprise account with its active member count (operators)."""
    require_operator(principal)
    async with ctx.uow.begin(write=False) as tx:
        counts = (
            select(Membership.org_id, func.count().label("members"))
            .where(Membership.removed_at.is_(None))
            .group_by(Membership.org_id)
            .subquery()
        )
        rows = await tx.session.execute(
            select(Organization, func.coalesce(counts.c.members, 0))
            .outerjoin(counts, counts.c.org_id == Organization.id)
            .order_by(Organization.id)
        )
        return [
            {
                "org_id": org.id,
                "name": org.name,
                "members": int(members),
                "timezone": org.timezone,
                "created_at": org.created_at.isoformat(),
            }
            for org, members in rows
        ]


async def find_org(ctx: Context, principal: Principal, ref: str) -> int:
    """The id of the org named `ref`, or with id `ref` (operators, for the command line)."""
    require_operator(principal)
    async with ctx.uow.begin(write=False) as tx:
        by_name = select(Organization.id).where(Organization.name == ref.strip())
        found = await tx.session.scalar(by_name)
        if found is None and ref.strip().isdigit():
            found = await tx.session.scalar(
                select(Organization.id).where(Organization.id == int(ref))
            )
    if found is None:
        raise NotFound(f"no organization is named or numbered {ref!r}", param="org")
    return found


async def require_admin(ctx: Context, principal: Principal, org_id: int) -> None:
    """The org-admin check on its own, for adapters that refuse before reading a request body
    (each service checks again)."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
