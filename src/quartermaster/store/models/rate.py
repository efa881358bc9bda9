"""Per-member rate windows: calls and tokens started in one clock minute, shared by every
gateway process through the database."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from quartermaster.store.models.base import Base


class RateWindow(Base):
    __tablename__ = "rate_windows"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Minutes since the Unix epoch (UTC) that this window counts."""
    requests: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
