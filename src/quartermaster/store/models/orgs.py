"""Enterprise accounts: organizations, their members, purchases and per-member caps."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from quartermaster.store.models.base import Base
from quartermaster.store.types import BigId, ExactDecimal, UTCDateTime


class Organization(Base):
    """An enterprise account; its settings include the time zone its months are counted in."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    billing_address: Mapped[str] = mapped_column(Text, default="")
    additional_information: Mapped[str] = mapped_column(Text, default="", server_default="")
    """What the customer told sales besides the order (the reference's provisioning email)."""
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    min_inference_allocation: Mapped[int] = mapped_column(BigInteger, default=200_000)
    prompt_logging: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_approve_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_approve_max_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    auto_approve_max_pool_pct: Mapped[Decimal] = mapped_column(
        ExactDecimal(7, 4), default=Decimal(0)
    )
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer)
    """Metered calls a member may start per minute (NULL: no limit)."""
    rate_limit_tpm: Mapped[int | None] = mapped_column(BigInteger)
    """Platform tokens a member may reserve per minute (NULL: no limit)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Membership(Base):
    """A user's place in an organization. Removal sets `removed_at`; the row and history stay."""

    __tablename__ = "memberships"
    __table_args__ = (
        Index("ix_memberships_org_active", "org_id", "removed_at"),
        CheckConstraint("role IN ('admin', 'member')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    paid: Mapped[bool] = mapped_column(Boolean, default=True)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    """Equals user_id while the membership is active, NULL once removed: one enterprise per user."""


class Allocation(Base):
    """A member's monthly caps. `version` makes every edit a compare-and-set (stale → 409)."""

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("max_inference_tokens >= 0", name="inference_nonnegative"),
        CheckConstraint("max_training_tokens >= 0", name="training_nonnegative"),
    )

    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    max_inference_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    max_training_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Purchase(Base):
    """A subscription line (active from start to end date) or a top-up (one period only)."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("org_id", "reference", name="uq_purchases_org_reference"),
        CheckConstraint("inference_tokens >= 0", name="inference_nonnegative"),
        CheckConstraint("training_tokens >= 0", name="training_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    term: Mapped[str | None] = mapped_column(String(16))
    inference_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    training_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    """Exclusive end: the line gives tokens to every month that starts before it."""
    price: Mapped[Decimal] = mapped_column(ExactDecimal(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    reference: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TokenRequest(Base):
    """A member's request for more tokens, and how it was decided (by an admin or the org's
    auto-approval rule). Kept after the decision: the member and admins see the outcome."""

    __tablename__ = "token_requests"
    __table_args__ = (
        Index("ix_token_requests_org_status", "org_id", "status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("kind IN ('inference', 'training')", name="kind_known"),
        CheckConstraint("status IN ('pending', 'approved', 'denied')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    approved_amount: Mapped[int | None] = mapped_column(BigInteger)
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrgModel(Base):
    """A model an organization allows its members. An org with no rows allows every enabled
    model; once it lists any, only those."""

    __tablename__ = "org_models"

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
