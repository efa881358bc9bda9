"""Closed months folded into summaries, so the metrics pages stop re-adding every member's
roll-ups of months that no longer change (services/ledger/fold.py says when a month is closed).

A fold holds the on-time usage of every period up to `UsageFold.through_period`; a late
settlement (an expired hold charged after all, `usage_events.status = 'late'`) is the one thing
that still books into such a month, so the fold leaves late events out and readers add them
from the events themselves, found through `ix_usage_events_late`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from quartermaster.store.models.base import Base
from quartermaster.store.models.ledger import UsageEvent
from quartermaster.store.types import UTCDateTime

LATE = "late"
"""The status of a late settlement's event; the partial index and its readers use this text."""


class UsageFold(Base):
    """The one row saying which periods the folded tables hold (none while it is null)."""

    __tablename__ = "usage_folds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    through_period: Mapped[str | None] = mapped_column(String(7))
    folded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FoldedUserUsage(Base):
    """A user's on-time tokens (both kinds, every org) in the folded periods."""

    __tablename__ = "usage_folded_users"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger)


class FoldedOrgUsage(Base):
    """An org's on-time tokens and requests per folded period, kind, model and route."""

    __tablename__ = "usage_folded_orgs"

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    route: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)


LATE_EVENTS = Index(
    "ix_usage_events_late",
    UsageEvent.org_id,
    UsageEvent.period,
    postgresql_where=text(f"status = '{LATE}'"),
    sqlite_where=text(f"status = '{LATE}'"),
)
"""Only late events enter it, so an on-time settle writes nothing more than before."""
