"""Individual subscriptions: plans, who is on which, refills, and payments for plan periods."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from quartermaster.store.models.base import Base
from quartermaster.store.types import BigId, ExactDecimal, UTCDateTime


class Plan(Base):
    """A tier an individual can subscribe to. Exactly one active plan is the default (free)
    tier that every registered user outside an enterprise is on until they choose another."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("monthly_inference_tokens >= 0", name="inference_nonnegative"),
        CheckConstraint("monthly_training_tokens >= 0", name="training_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    monthly_inference_tokens: Mapped[int] = mapped_column(BigInteger)
    monthly_training_tokens: Mapped[int] = mapped_column(BigInteger)
    price_monthly: Mapped[Decimal] = mapped_column(ExactDecimal(14, 2))
    price_yearly: Mapped[Decimal] = mapped_column(ExactDecimal(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    models_allowed: Mapped[list[str] | None] = mapped_column(JSON)
    """Model names the plan may use; NULL: every enabled model."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Subscription(Base):
    """Which plan a user is on (no row: the default plan), on which term, since when."""

    __tablename__ = "subscriptions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    term: Mapped[str] = mapped_column(String(16), default="monthly")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Refill(Base):
    """Extra tokens bought for one month only; they never carry into the next."""

    __tablename__ = "refills"
    __table_args__ = (
        Index("ix_refills_user_period", "user_id", "period"),
        CheckConstraint("tokens > 0", name="tokens_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(16))
    tokens: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(ExactDecimal(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    payment_reference: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlanPayment(Base):
    """A payment that covers a user's plan from `period_from` to `period_to` (inclusive)."""

    __tablename__ = "plan_payments"
    __table_args__ = (Index("ix_plan_payments_user", "user_id", "period_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    period_from: Mapped[str] = mapped_column(String(7))
    period_to: Mapped[str] = mapped_column(String(7))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    provider: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
