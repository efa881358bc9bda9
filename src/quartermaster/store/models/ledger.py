"""The token ledger: model rates, monthly counters, two-phase holds, usage events, roll-ups.

Invariant (checked by `qm ledger check`): for every user, period and kind,
Σ usage_events.tokens = usage_counters.used = Σ usage_monthly.tokens.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quartermaster.domain.routes import Route
from quartermaster.store.models.base import Base
from quartermaster.store.types import BigId, ExactDecimal, UTCDateTime


class ModelCatalogEntry(Base):
    """A model callers may use, with the rates that turn its tokens into platform tokens."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    upstream_model: Mapped[str] = mapped_column(String(200))
    input_rate: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(1))
    output_rate: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(1))
    training_rate: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(1))
    context_window: Mapped[int] = mapped_column(Integer, default=8192)
    max_output_tokens: Mapped[int] = mapped_column(Integer, default=1024)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the model can do, so the gateway refuses only what it cannot (services/catalog).
    tools: Mapped[bool] = mapped_column(Boolean, default=False)
    vision: Mapped[bool] = mapped_column(Boolean, default=False)
    audio_input: Mapped[bool] = mapped_column(Boolean, default=False)
    logprobs: Mapped[bool] = mapped_column(Boolean, default=False)
    max_choices: Mapped[int] = mapped_column(Integer, default=1)
    image_tokens: Mapped[int] = mapped_column(Integer, default=0)
    prompt_margin_pct: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UsageCounter(Base):
    """What a user has used and has on hold in one period and kind: the row a reserve updates.

    `ix_usage_counters_period` lets the user table read one month's rows (or the months after
    the fold) instead of every month's. It leaves out `used` and `reserved`, the only columns
    reserve and settle update, so those updates stay HOT (PostgreSQL writes no index entry for
    them); only a member's first call of a month adds one. Not unique, so it is never the
    arbiter of the counters' upserts.
    """

    __tablename__ = "usage_counters"
    __table_args__ = (
        CheckConstraint("used >= 0", name="used_nonnegative"),
        CheckConstraint("reserved >= 0", name="reserved_nonnegative"),
        Index("ix_usage_counters_period", "period", "kind", "user_id"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)


class Hold(Base):
    """A pending reservation; it resolves once, to settled, released or expired."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_state_expires", "state", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(32), server_default=Route.CHAT.value)
    """The route the call came by (domain/routes.py), carried to its usage event."""
    amount: Mapped[int] = mapped_column(BigInteger)
    input_rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    output_rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    """The rates quoted at reserve; settlement charges these, so a rate edit mid-call changes
    nothing. For training holds `input_rate` is the training rate and `output_rate` is zero."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsageEvent(Base):
    """One metered call, with the rates used, so a later rate change never rewrites history."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_org_time", "org_id", "created_at"),
        Index("ix_usage_events_user_period", "user_id", "period", "kind"),
        CheckConstraint("cached_tokens >= 0", name="cached_tokens_nonnegative"),
        CheckConstraint("reasoning_tokens >= 0", name="reasoning_tokens_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(32), server_default=Route.CHAT.value)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Parts of `prompt_tokens` (read from the upstream's cache) and of `completion_tokens`
    (spent reasoning), as the upstream reported them; they do not change the charge."""
    tokens: Mapped[int] = mapped_column(BigInteger)
    """The charge in platform tokens."""
    input_rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    output_rate: Mapped[Decimal] = mapped_column(ExactDecimal())
    """For training events `input_rate` is the training rate and `output_rate` is zero."""
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    overrun: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(32), default="ok")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UsageMonthly(Base):
    """Roll-up of usage events per org, user, period, kind, model and route: what every page
    reads."""

    __tablename__ = "usage_monthly"
    __table_args__ = (Index("ix_usage_monthly_org_period", "org_id", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    route: Mapped[str] = mapped_column(String(32), server_default=Route.CHAT.value)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    rollup_key: Mapped[str] = mapped_column(String(128), unique=True)
    """`org:user:period:kind:model:route`, so one upsert statement works on both databases."""
