"""The plans operators offer to individuals, and which plan a user is on.

A user with no subscription row is on the default plan (the free tier), so every registered
person outside an enterprise can spend from the day they register.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib.resources import files
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import InvalidInput, NotFound
from quartermaster.domain.plans import PlanTerms, check_terms
from quartermaster.domain.principal import Principal, require_operator
from quartermaster.domain.rates import parse_rate
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.store.models import Plan, Subscription


def terms_of(plan: Plan) -> PlanTerms:
    allowed = tuple(plan.models_allowed) if plan.models_allowed is not None else None
    return PlanTerms(
        plan.name,
        plan.monthly_inference_tokens,
        plan.monthly_training_tokens,
        plan.price_monthly,
        plan.price_yearly,
        allowed,
        plan.active,
        plan.is_default,
    )


def parse_terms(raw: dict[str, Any]) -> PlanTerms:
    """Plan terms from TOML or JSON input, money read as exact decimals."""
    try:
        allowed = raw.get("models_allowed")
        terms = PlanTerms(
            name=str(raw["name"]).strip(),
            monthly_inference_tokens=int(raw["monthly_inference_tokens"]),
            monthly_training_tokens=int(raw["monthly_training_tokens"]),
            price_monthly=parse_rate(raw.get("price_monthly", "0"), "price_monthly"),
            price_yearly=parse_rate(raw.get("price_yearly", "0"), "price_yearly"),
            models_allowed=tuple(allowed) if allowed is not None else None,
            active=bool(raw.get("active", True)),
            is_default=bool(raw.get("is_default", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"a plan needs name, monthly tokens and prices: {exc}", param="plan"
        ) from None
    check_terms(terms)
    return terms


def default_terms() -> list[PlanTerms]:
    text = files("quartermaster.data").joinpath("plans.toml").read_text()
    return [parse_terms(raw) for raw in tomllib.loads(text).get("plans", [])]


def _row_values(terms: PlanTerms) -> dict[str, Any]:
    values = vars(terms).copy()
    values["models_allowed"] = (
        list(terms.models_allowed) if terms.models_allowed is not None else None
    )
    return values


async def seed(ctx: Context, plans: list[PlanTerms]) -> list[str]:
    """Add the plans that are missing by name; never overwrites an operator's edits."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        existing = set(await tx.session.scalars(select(Plan.name)))
        found = await tx.session.scalar(select(Plan.id).where(Plan.is_default.is_(True)))
        has_default = found is not None
        added = [p for p in plans if p.name not in existing]
        for terms in added:
            values = _row_values(terms)
            values["is_default"] = terms.is_default and not has_default
            has_default = has_default or terms.is_default  # one default: the first listed
            tx.session.add(Plan(**values, currency="USD", created_at=now))
            entry = audit.AuditEntry("plan.seed", target_type="plan", target_id=terms.name)
            await audit.record(tx.session, entry, now)
        await tx.commit()
    return [p.name for p in added]


async def list_plans(ctx: Context, include_inactive: bool = False) -> list[PlanTerms]:
    async with ctx.uow.begin(write=False) as tx:
        query = select(Plan).order_by(Plan.price_monthly, Plan.name)
        if not include_inactive:
            query = query.where(Plan.active.is_(True))
        return [terms_of(plan) for plan in await tx.session.scalars(query)]


async def save(ctx: Context, principal: Principal, terms: PlanTerms) -> PlanTerms:
    """Create or change a plan (operators). Making it the default unmarks the old default."""
    require_operator(principal)
    check_terms(terms)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        plan = await tx.session.scalar(select(Plan).where(Plan.name == terms.name))
        before = None if plan is None else _plain(terms_of(plan))
        if terms.is_default:
            await tx.session.execute(update(Plan).values(is_default=False))
        if plan is None:
            plan = Plan(currency="USD", created_at=now)
            tx.session.add(plan)
        for field, value in _row_values(terms).items():
            setattr(plan, field, value)
        entry = audit.AuditEntry(
            "plan.save",
            principal.user_id,
            target_type="plan",
            target_id=terms.name,
            before=before,
            after=_plain(terms),
        )
        await audit.record(tx.session, entry, now)
        await tx.commit()
    return terms


def _plain(terms: PlanTerms) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in _row_values(terms).items()}


async def plan_named(session: AsyncSession, name: str) -> Plan:
    plan = await session.scalar(select(Plan).where(Plan.name == name, Plan.active.is_(True)))
    if plan is None:
        raise NotFound(
            f"no active plan called {name!r}; Settings → Tokens lists them", param="plan"
        )
    return plan


async def current(session: AsyncSession, user_id: int) -> tuple[Plan, str] | None:
    """(plan, term) the user is on: their subscription, else the default plan; None if neither."""
    row = (
        await session.execute(
            select(Plan, Subscription.term)
            .join(Subscription, Subscription.plan_id == Plan.id)
            .where(Subscription.user_id == user_id)
        )
    ).one_or_none()
    if row is not None:
        return row[0], row[1]
    default = await session.scalar(
        select(Plan).where(Plan.is_default.is_(True), Plan.active.is_(True)).order_by(Plan.id)
    )
    return None if default is None else (default, "monthly")


def public(terms: PlanTerms) -> dict[str, Any]:
    """A plan as users see it (JSON-ready)."""
    return _plain(terms)
