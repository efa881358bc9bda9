"""Recording what an organization bought: subscription lines and top-ups (operators only).

A subscription line gives its monthly amounts to every month of its terms, from the current month
(or a later one); a top-up gives its amounts to the current month only. The price defaults to the
configured list price (`Context.prices`); an operator may record a negotiated one instead.

Errors: PermissionDenied (operator_required, mfa_required), NotFound (org), InvalidInput (not
whole bundles, a past start, a bad price or currency), Conflict (reference already used).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain import pricing
from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.periods import period_of
from quartermaster.domain.pool import month_first_day
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.domain.types import PurchaseKind, Term
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise.org_pool import get_org
from quartermaster.services.identity import authz
from quartermaster.store.models import Organization, Purchase

MAX_TERMS = 60


@dataclass(frozen=True)
class Order:
    """One purchase line: monthly amounts, and for subscriptions the term and how many terms."""

    inference_tokens: int
    training_tokens: int = 0
    term: Term = Term.YEARLY
    terms: int = 1
    start_period: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    reference: str | None = None


def purchase_view(line: Purchase) -> dict[str, Any]:
    return {
        "id": line.id,
        "kind": line.kind,
        "term": line.term,
        "inference_tokens": line.inference_tokens,
        "training_tokens": line.training_tokens,
        "starts_on": line.starts_on.isoformat(),
        "ends_on": line.ends_on.isoformat(),
        "price": str(line.price),
        "currency": line.currency,
        "reference": line.reference,
        "created_at": line.created_at.isoformat(),
    }


def _price(order: Order, prices: pricing.PriceList, term: Term) -> tuple[Decimal, str]:
    if order.price is not None:
        currency = pricing.check_currency(order.currency or prices.currency)
        return pricing.check_price(order.price), currency
    listed = pricing.line_price(
        prices, term, order.inference_tokens, order.training_tokens, order.terms
    )
    return listed, prices.currency


def _span(order: Order, kind: PurchaseKind, current: str) -> tuple[Term | None, int, str]:
    """(term, months, first month) of the line, refusing starts in the past."""
    if kind is PurchaseKind.TOPUP:
        return None, 1, current
    if not 1 <= order.terms <= MAX_TERMS:
        raise InvalidInput(f"terms must be between 1 and {MAX_TERMS}", param="terms")
    start = order.start_period or current
    if month_first_day(start) < month_first_day(current):
        raise InvalidInput(
            f"a subscription cannot start before the current month {current}",
            param="start_period",
        )
    return order.term, pricing.TERM_MONTHS[order.term] * order.terms, start


async def add_line(
    session: AsyncSession,
    org: Organization,
    kind: PurchaseKind,
    order: Order,
    prices: pricing.PriceList,
    actor: int | None,
    now: datetime,
) -> Purchase:
    """Write one purchase line and its audit event in the caller's transaction."""
    pricing.check_tokens(order.inference_tokens, order.training_tokens)
    term, months, start = _span(order, kind, period_of(now, org.timezone))
    price, currency = _price(order, prices, term or Term.MONTHLY)
    if order.reference and await session.scalar(
        select(Purchase.id).where(Purchase.org_id == org.id, Purchase.reference == order.reference)
    ):
        raise Conflict(f"reference {order.reference!r} is already recorded", param="reference")
    first_day = month_first_day(start)
    line = Purchase(
        org_id=org.id,
        kind=kind.value,
        term=term.value if term else None,
        inference_tokens=order.inference_tokens,
        training_tokens=order.training_tokens,
        starts_on=first_day,
        ends_on=pricing.months_after(first_day, months),
        price=price,
        currency=currency,
        reference=order.reference or None,
        created_by=actor,
        created_at=now,
    )
    session.add(line)
    await session.flush()
    entry = audit.AuditEntry(
        action=f"purchase.{kind.value}",
        actor_user_id=actor,
        org_id=org.id,
        target_type="purchase",
        target_id=line.id,
        after=purchase_view(line),
    )
    await audit.record(session, entry, now)
    return line


async def buy(
    ctx: Context, principal: Principal, org_id: int, kind: PurchaseKind, order: Order
) -> dict[str, Any]:
    """Record a subscription line or a top-up for `org_id`; returns the line."""
    require_operator(principal)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        org = await get_org(tx.session, org_id, lock=True)
        line = await add_line(tx.session, org, kind, order, ctx.prices, principal.user_id, now)
        view = purchase_view(line)
        await tx.commit()
    return view


async def list_purchases(ctx: Context, principal: Principal, org_id: int) -> list[dict[str, Any]]:
    """Every line the org bought, newest first (admins of the org and operators)."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        lines = await tx.session.scalars(
            select(Purchase).where(Purchase.org_id == org_id).order_by(Purchase.id.desc())
        )
        return [purchase_view(line) for line in lines]
