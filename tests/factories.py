"""Test data built the way users build it: accounts through the registration service, orgs
through the operator's provisioning service and the admins' allocation service."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.pricing import INFERENCE_BUNDLE_TOKENS, TRAINING_BUNDLE_TOKENS
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.enterprise.allocations import CapsEdit, set_allocation
from quartermaster.services.enterprise.provisioning import provision
from quartermaster.services.identity.accounts import Registration, register

PASSWORD = "violet-anchor-sparrow-9"
BILLING_ADDRESS = "1 Test Street, Springfield"
CAP = (1_000_000, 100_000)
"""Every fixture member's (inference, training) caps."""
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


def _whole(tokens: int, bundle: int) -> int:
    """`tokens` rounded up to whole bundles."""
    return -(-tokens // bundle) * bundle


async def add_org(
    ctx: Context, admins: int = 1, members: int = 2, name: str | None = None
) -> OrgFixture:
    """An organization with fresh admin and member accounts, each capped at `CAP`, that bought
    just enough whole bundles (yearly, from this month) for those caps."""
    tag = next(_ids)
    admin_emails = [f"admin{tag}-{i}@example.com" for i in range(admins)]
    member_emails = [f"member{tag}-{i}@example.com" for i in range(members)]
    admin_ids = [await add_user(ctx, email) for email in admin_emails]
    member_ids = [await add_user(ctx, email) for email in member_emails]
    people = admin_ids + member_ids
    request = Provisioning(
        name=name or f"Org {tag}",
        member_emails=admin_emails + member_emails,
        admin_emails=admin_emails,
        inference_tokens=_whole(len(people) * CAP[0], INFERENCE_BUNDLE_TOKENS),
        training_tokens=_whole(len(people) * CAP[1], TRAINING_BUNDLE_TOKENS),
        billing_address=BILLING_ADDRESS,
    )
    operator = Principal.command_line()
    org_id = (await provision(ctx, operator, request))["org_id"]
    for user_id in people:
        await set_allocation(ctx, operator, org_id, user_id, CapsEdit(*CAP, version=1))
    return OrgFixture(org_id, admin_ids, member_ids, admin_emails, member_emails)
