"""Test data built the way users build it: accounts through the registration service; orgs with
members and caps inserted directly until the enterprise service exists to do it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from quartermaster.services.accounts import Registration, register
from quartermaster.services.context import Context
from quartermaster.store.models import Allocation, Membership, Organization

PASSWORD = "violet-anchor-sparrow-9"
_ids = itertools.count(1)


async def add_user(ctx: Context, email: str | None = None, operator: bool = False) -> int:
    address = email or f"user{next(_ids)}@example.com"
    return await register(ctx, Registration(address, PASSWORD, "", True, is_operator=operator))


@dataclass(frozen=True)
class OrgFixture:
    org_id: int
    admin_ids: list[int]
    member_ids: list[int]
    admin_emails: list[str]
    member_emails: list[str]


async def add_org(
    ctx: Context, admins: int = 1, members: int = 2, name: str | None = None
) -> OrgFixture:
    """An organization with fresh admin and member accounts, each with a 1M inference cap."""
    tag = next(_ids)
    admin_emails = [f"admin{tag}-{i}@example.com" for i in range(admins)]
    member_emails = [f"member{tag}-{i}@example.com" for i in range(members)]
    admin_ids = [await add_user(ctx, email) for email in admin_emails]
    member_ids = [await add_user(ctx, email) for email in member_emails]
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        org = Organization(name=name or f"Org {tag}", created_at=now)
        tx.session.add(org)
        await tx.session.flush()
        for user_id in admin_ids + member_ids:
            role = "admin" if user_id in admin_ids else "member"
            membership = Membership(
                org_id=org.id, user_id=user_id, active_user_id=user_id, role=role, joined_at=now
            )
            tx.session.add(membership)
            await tx.session.flush()
            tx.session.add(
                Allocation(
                    membership_id=membership.id,
                    org_id=org.id,
                    max_inference_tokens=1_000_000,
                    max_training_tokens=100_000,
                    updated_at=now,
                )
            )
        await tx.commit()
    return OrgFixture(org.id, admin_ids, member_ids, admin_emails, member_emails)
