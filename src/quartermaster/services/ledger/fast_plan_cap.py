"""The reserve's fast path for an individual on a plan: the cap as SQL, and what to remember.

Outside any enterprise a user's cap for a month is their plan's monthly tokens plus the month's
refills (services/plans/subscriptions.py), and a paid plan counts only for months it was paid for.
The hold's statement computes exactly that from the rows as they are now: the plan the user is
on (their subscription, else the default plan, as `plans.current` reads it), its tokens, the
refills, and a payment covering the month unless the plan is free. The process remembers only
which plan it was (`PlanGuess`), its model list, because whether a list names a model is a
question of JSON that each database asks differently, and its prices, because SQLite keeps money
as text: the statement checks that the plan, its list (as text) and its prices are still the ones
the process read, and that the user has joined no org since (their allocation then applies).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    ScalarSelect,
    Select,
    Text,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from quartermaster.domain.types import TokenKind
from quartermaster.services.ledger.sql import model_columns
from quartermaster.store.models import (
    Membership,
    ModelCatalogEntry,
    Plan,
    PlanPayment,
    Refill,
    Subscription,
)


@dataclass(frozen=True)
class PlanGuess:
    """The plan an individual was on, and its model list as the database wrote it (None: the
    plan names no list, every enabled model)."""

    plan_id: int
    models_text: str | None
    price_monthly: Decimal
    price_yearly: Decimal

    @property
    def free(self) -> bool:
        """A free plan needs no payment for the month (`PlanTerms.free`)."""
        return self.price_monthly == 0 and self.price_yearly == 0

    def allows(self, model: str) -> bool:
        listed = None if self.models_text is None else json.loads(self.models_text)
        return listed is None or model in listed


def _current_plan_id() -> ColumnElement[int]:
    """The plan `b_user_id` is on: their subscription's, else the active default plan."""
    default = aliased(Plan)
    subscribed = select(Subscription.plan_id).where(Subscription.user_id == bindparam("b_user_id"))
    fallback = select(default.id).where(default.is_default.is_(True), default.active.is_(True))
    first = fallback.order_by(default.id).limit(1)  # as `plans.current` reads it
    return func.coalesce(subscribed.scalar_subquery(), first.scalar_subquery())


def _models_text() -> ColumnElement[str]:
    return cast(Plan.models_allowed, Text)


def is_member() -> ColumnElement[bool]:
    """`b_user_id` belongs to an org: their allocation is their cap, not a plan."""
    return exists().where(Membership.active_user_id == bindparam("b_user_id"))


@cache
def guess_query() -> Select[Any]:
    """The individual's plan, when they are on one and the model is enabled (bound `b_user_id`,
    `b_model`); the model's columns are named as in the member's guess."""
    m = ModelCatalogEntry
    plan = (Plan.id.label("plan_id"), _models_text().label("models_text"))
    return (
        select(*plan, Plan.price_monthly, Plan.price_yearly, *model_columns())
        .select_from(m)
        .join(Plan, Plan.id == _current_plan_id())
        .where(m.name == bindparam("b_model"), m.enabled.is_(True), ~is_member())
    )


def cap(kind: TokenKind) -> ScalarSelect[Any]:
    """This month's cap of `b_user_id` on the guessed plan (`b_plan_id`, `b_plan_models`), or
    NULL when they are on another plan now, its list or prices changed, or the month is unpaid
    (`b_plan_free`: the guessed prices are nil)."""
    monthly = (
        Plan.monthly_inference_tokens
        if kind is TokenKind.INFERENCE
        else Plan.monthly_training_tokens
    )
    refills = select(func.coalesce(func.sum(Refill.tokens), 0)).where(
        Refill.user_id == bindparam("b_user_id"),
        Refill.period == bindparam("b_period"),
        Refill.kind == kind.value,
    )
    period: BindParameter[str] = bindparam("b_period")
    paid = exists().where(
        PlanPayment.user_id == bindparam("b_user_id"),
        PlanPayment.plan_id == Plan.id,
        PlanPayment.period_from <= period,
        PlanPayment.period_to >= period,
    )
    price_monthly = bindparam("b_plan_price_monthly", type_=Plan.price_monthly.type)
    price_yearly = bindparam("b_plan_price_yearly", type_=Plan.price_yearly.type)
    return (
        select(monthly + refills.scalar_subquery())
        .where(
            Plan.id == bindparam("b_plan_id"),
            Plan.id == _current_plan_id(),
            _models_text().is_not_distinct_from(bindparam("b_plan_models", type_=Text)),
            Plan.price_monthly == price_monthly,
            Plan.price_yearly == price_yearly,
            or_(bindparam("b_plan_free", type_=Boolean), paid),
        )
        .scalar_subquery()
    )
