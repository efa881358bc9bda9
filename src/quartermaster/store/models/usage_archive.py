"""What the usage events of archived months added up to, so `qm ledger check` still proves the
counters and roll-ups of those months after their events are gone (services/ledger/archive.py).

Rows are only ever inserted: archiving the same month twice (a late event that arrived after the
first archive) adds a second row for the same key, and readers add them up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from quartermaster.domain.routes import Route
from quartermaster.store.models.base import Base
from quartermaster.store.types import BigId, UTCDateTime


class ArchivedUsage(Base):
    """Σ tokens and the count of the archived events of one roll-up key."""

    __tablename__ = "usage_archived"
    __table_args__ = (Index("ix_usage_archived_period", "period"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    period: Mapped[str] = mapped_column(String(7))
    kind: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    route: Mapped[str] = mapped_column(String(32), server_default=Route.CHAT.value)
    tokens: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime)
