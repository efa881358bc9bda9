"""Members with caps for ledger tests, inserted as rows until the enterprise service exists.

Each call makes its own organization and user with unique names, so a test (or a hypothesis
example) can make as many as it needs in one database.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from quartermaster.domain.principal import Principal
from quartermaster.services import catalog, ledger
from quartermaster.services.context import Context
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.services.ledger import fast_reserve, transfers
from quartermaster.store.models import Allocation, Membership, Organization, Purchase

CHAT = "smollm2-135m-instruct"
EMBEDDING = "all-minilm-l6-v2"
PRICED = "gpt-4o-mini"
"""Seeded disabled at input 1.5 and output 6 per token: `enable_priced_model` turns it on."""
_serial = itertools.count()


@dataclass(frozen=True)
class Member:
    user_id: int
    org_id: int
    membership_id: int


async def new_user(ctx: Context) -> int:
    email = f"member-{next(_serial)}-{uuid.uuid4().hex[:8]}@example.com"
    return await register(ctx, Registration(email, "violet-anchor-99", "", True))


async def add_member(
    ctx: Context,
    *,
    inference_cap: int = 1_000,
    training_cap: int = 1_000,
    pool: tuple[int, int] = (2_000_000, 1_000_000),
    timezone: str = "UTC",
    banned: bool = False,
    paid: bool = True,
    months: tuple[date, date] = (date(2026, 1, 1), date(2028, 1, 1)),
) -> Member:
    """A member of a fresh org that bought `pool` (inference, training) for every month in
    `months`, with the given caps and flags."""
    user_id = await new_user(ctx)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        org = Organization(name=f"Org {uuid.uuid4().hex}", timezone=timezone, created_at=now)
        tx.session.add(org)
        await tx.session.flush()
        if any(pool):
            tx.session.add(
                Purchase(
                    org_id=org.id,
                    kind="subscription",
                    term="yearly",
                    inference_tokens=pool[0],
                    training_tokens=pool[1],
                    starts_on=months[0],
                    ends_on=months[1],
                    price=Decimal("990.00"),
                    created_at=now,
                )
            )
        membership = Membership(
            org_id=org.id,
            user_id=user_id,
            active_user_id=user_id,
            role="member",
            paid=paid,
            banned=banned,
            joined_at=now,
        )
        tx.session.add(membership)
        await tx.session.flush()
        tx.session.add(
            Allocation(
                membership_id=membership.id,
                org_id=org.id,
                max_inference_tokens=inference_cap,
                max_training_tokens=training_cap,
                updated_at=now,
            )
        )
        await tx.commit()
        return Member(user_id, org.id, membership.id)


async def enable_priced_model(ctx: Context) -> None:
    await catalog.update_model(ctx, Principal.command_line(), PRICED, enabled=True)


def quick_call(ctx: Context, user_id: int, prompt_tokens: int = 10) -> fast_reserve.Call:
    """A chat of `CHAT` (rates 1: holds `prompt_tokens` + 20) for the fast path alone."""
    now = ctx.clock.now()
    return fast_reserve.Call(user_id, CHAT, prompt_tokens, 20, f"quick-{next(_serial)}", now, 60)


async def remembered(ctx: Context, user_id: int) -> ledger.HoldReceipt:
    """Two calls: the month's first, which takes the full path (there is no counter yet), then
    one the fast path takes, so that this process now remembers what it guessed."""
    await ledger.reserve(ctx, user_id, CHAT, 10, 20, f"quick-{next(_serial)}")
    fast = await transfers.reserve_quickly(ctx, quick_call(ctx, user_id))
    assert fast is not None, "the fast path took the second call"
    return fast
