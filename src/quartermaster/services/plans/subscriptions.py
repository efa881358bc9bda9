"""Individual subscriptions: changing plan, paying for plan months, month-only refills, and the
caps a user outside any enterprise spends from.

Errors: NotFound (no such plan or user), InvalidInput (bad amounts or periods),
PermissionDenied `plan_unpaid` (a paid plan's month has no payment: metered calls refuse),
`enterprise_member` (members draw on their org's allocation, not a plan), PaymentRequired
(the payment provider declined or payments are manual), Conflict (a payment reference already
recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain import plans as rules
from quartermaster.domain.amounts import check_token_amount
from quartermaster.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from quartermaster.domain.periods import period_of
from quartermaster.domain.pricing import (
    INFERENCE_BUNDLE_TOKENS,
    TRAINING_BUNDLE_TOKENS,
    PriceList,
    line_price,
)
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.domain.types import Term, TokenKind
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.services.plans import offers as plan_catalog
from quartermaster.services.plans.payments import Charge, PaymentProvider
from quartermaster.store.models import (
    Plan,
    PlanPayment,
    Refill,
    Subscription,
    User,
)


async def paid_spans(session: AsyncSession, user_id: int, plan_id: int) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(PlanPayment.period_from, PlanPayment.period_to).where(
            PlanPayment.user_id == user_id, PlanPayment.plan_id == plan_id
        )
    )
    return [(start, end) for start, end in rows]


async def refills_of(session: AsyncSession, user_id: int, period: str, kind: TokenKind) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Refill.tokens), 0)).where(
            Refill.user_id == user_id, Refill.period == period, Refill.kind == kind.value
        )
    )
    return int(total or 0)


async def individual_cap(
    session: AsyncSession, user_id: int, kind: TokenKind, period: str
) -> int | None:
    """The cap of a user outside any enterprise: their plan plus the month's refills.
    None when there is no plan at all; refuses, saying how to pay, when the month is unpaid."""
    found = await plan_catalog.current(session, user_id)
    if found is None:
        return None
    plan, _ = found
    terms = plan_catalog.terms_of(plan)
    if not terms.free and not rules.is_covered(period, await paid_spans(session, user_id, plan.id)):
        raise PermissionDenied(
            f"your {plan.name} plan is unpaid for {period}: pay for the month under "
            "Settings → Tokens, or switch to the free plan",
            code="plan_unpaid",
            details={"plan": plan.name, "period": period},
        )
    return rules.cap(terms, kind, [await refills_of(session, user_id, period, kind)])


async def _individual(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", param="user_id")
    if await authz.active_membership(session, user_id) is not None:
        raise PermissionDenied(
            "you draw on your organization's allocation; ask its admin for more tokens "
            "under Settings → Tokens",
            code="enterprise_member",
        )
    return user


def _target(principal: Principal, user_id: int | None) -> int:
    if user_id is None or user_id == principal.user_id:
        return principal.uid
    require_operator(principal)
    return user_id


async def change_plan(
    ctx: Context, principal: Principal, plan: str, term: Term, user_id: int | None = None
) -> dict[str, str]:
    """Move a user (yourself, or anyone for operators) to `plan` now; audited."""
    target, now = _target(principal, user_id), ctx.clock.now()
    async with ctx.uow.begin() as tx:
        user = await tx.session.get(User, target)
        if user is None:
            raise NotFound("no such user", param="user_id")
        new = await plan_catalog.plan_named(tx.session, plan)
        before = await plan_catalog.current(tx.session, target)
        subscription = await tx.session.get(Subscription, target)
        if subscription is None:
            subscription = Subscription(user_id=target)
            tx.session.add(subscription)
        subscription.plan_id, subscription.term, subscription.changed_at = new.id, term.value, now
        entry = audit.AuditEntry(
            "plan.change",
            principal.user_id,
            target_type="user",
            target_id=target,
            before={
                "plan": before[0].name if before else None,
                "term": before[1] if before else None,
            },
            after={"plan": new.name, "term": term.value},
        )
        await audit.record(tx.session, entry, now)
        await tx.commit()
    return {"plan": new.name, "term": term.value}


@dataclass(frozen=True)
class Payment:
    period_from: str
    period_to: str
    amount: Decimal
    reference: str


async def _book_payment(
    session: AsyncSession,
    principal: Principal,
    user_id: int,
    plan: Plan,
    payment: Payment,
    provider: str,
    ctx: Context,
) -> None:
    taken = select(PlanPayment.id).where(PlanPayment.reference == payment.reference)
    if await session.scalar(taken) is not None:
        raise Conflict(f"reference {payment.reference!r} is already recorded", param="reference")
    session.add(
        PlanPayment(
            user_id=user_id,
            plan_id=plan.id,
            period_from=payment.period_from,
            period_to=payment.period_to,
            amount=payment.amount,
            currency=plan.currency,
            provider=provider,
            reference=payment.reference,
            created_by=principal.user_id,
            created_at=ctx.clock.now(),
        )
    )
    entry = audit.AuditEntry(
        "plan.payment",
        principal.user_id,
        target_type="user",
        target_id=user_id,
        after={
            "plan": plan.name,
            "from": payment.period_from,
            "to": payment.period_to,
            "amount": str(payment.amount),
            "reference": payment.reference,
        },
    )
    await audit.record(session, entry, ctx.clock.now())


async def pay_current(ctx: Context, principal: Principal, payments: PaymentProvider) -> Payment:
    """Pay for your plan's current term (a month, or twelve from now on a yearly term)."""
    async with ctx.uow.begin() as tx:
        await _individual(tx.session, principal.uid)
        found = await plan_catalog.current(tx.session, principal.uid)
        if found is None:
            raise NotFound("there is no plan to pay for", param="plan")
        plan, term_name = found
        term = Term(term_name)
        start, end = rules.covered_periods(term, period_of(ctx.clock.now()))
        amount = plan_catalog.terms_of(plan).price(term)
        reference = await payments.charge(
            Charge(principal.uid, amount, plan.currency, f"{plan.name} plan {start}..{end}")
        )
        payment = Payment(start, end, amount, reference)
        await _book_payment(tx.session, principal, principal.uid, plan, payment, payments.name, ctx)
        await tx.commit()
    return payment


async def my_payments(ctx: Context, principal: Principal) -> list[dict[str, str]]:
    """The caller's plan payments, newest first, each with the reference it was recorded under
    (the receipt a person quotes when asking about it)."""
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.execute(
            select(PlanPayment, Plan.name)
            .join(Plan, Plan.id == PlanPayment.plan_id)
            .where(PlanPayment.user_id == principal.uid)
            .order_by(PlanPayment.id.desc())
        )
        return [
            {
                "plan": name,
                "from": paid.period_from,
                "to": paid.period_to,
                "amount": str(paid.amount),
                "currency": paid.currency,
                "reference": paid.reference,
            }
            for paid, name in rows
        ]


async def record_payment(
    ctx: Context,
    principal: Principal,
    user_id: int,
    first_period: str,
    amount: Decimal,
    reference: str,
) -> Payment:
    """An operator records money received for a user's current plan, from `first_period`."""
    require_operator(principal)
    if amount < 0:
        raise InvalidInput("amount cannot be negative", param="amount")
    async with ctx.uow.begin() as tx:
        found = await plan_catalog.current(tx.session, user_id)
        if found is None:
            raise NotFound("that user has no plan", param="user_id")
        plan, term = found
        start, end = rules.covered_periods(Term(term), first_period)
        payment = Payment(
            start, end, amount, reference.strip()[:100] or f"manual-{user_id}-{start}"
        )
        await _book_payment(tx.session, principal, user_id, plan, payment, "manual", ctx)
        await tx.commit()
    return payment


def refill_price(prices: PriceList, kind: TokenKind, tokens: int) -> Decimal:
    """Refills come in whole bundles at the monthly bundle price."""
    bundle = INFERENCE_BUNDLE_TOKENS if kind is TokenKind.INFERENCE else TRAINING_BUNDLE_TOKENS
    if tokens <= 0 or tokens % bundle:
        raise InvalidInput(
            f"{kind.value} refills come in multiples of {bundle:,} tokens", param="tokens"
        )
    check_token_amount(tokens, "tokens")
    inference = tokens if kind is TokenKind.INFERENCE else 0
    return line_price(prices, Term.MONTHLY, inference, tokens - inference)


async def refill(
    ctx: Context,
    principal: Principal,
    kind: TokenKind,
    tokens: int,
    payments: PaymentProvider,
    user_id: int | None = None,
) -> dict[str, object]:
    """Raise a cap of `kind` for the current month only, paid through `payments` (yourself,
    or any user for an operator recording a payment received); audited."""
    target = _target(principal, user_id)
    price, currency = refill_price(ctx.prices, kind, tokens), ctx.prices.currency
    period = period_of(ctx.clock.now())
    async with ctx.uow.begin() as tx:
        await _individual(tx.session, target)
        description = f"{tokens:,} {kind.value} tokens for {period}"
        reference = await payments.charge(Charge(target, price, currency, description))
        tx.session.add(
            Refill(
                user_id=target,
                period=period,
                kind=kind.value,
                tokens=tokens,
                price=price,
                currency=currency,
                payment_reference=reference,
                created_by=principal.user_id,
                created_at=ctx.clock.now(),
            )
        )
        after = {"kind": kind.value, "tokens": tokens, "period": period, "price": str(price)}
        entry = audit.AuditEntry(
            "plan.refill", principal.user_id, target_type="user", target_id=target, after=after
        )
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()
    return {**after, "reference": reference}
