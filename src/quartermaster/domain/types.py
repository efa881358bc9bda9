"""Names shared by every layer: kinds of tokens, roles, hold states."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import NewType

UserId = NewType("UserId", int)
OrgId = NewType("OrgId", int)
PeriodKey = NewType("PeriodKey", str)
"""A calendar month as `YYYY-MM`, in the organization's time zone."""


class TokenKind(StrEnum):
    """The two kinds of credit: inference (chat, completions) and training (dataset ingestion)."""

    INFERENCE = "inference"
    TRAINING = "training"


class Role(StrEnum):
    """A member's role inside one organization."""

    ADMIN = "admin"
    MEMBER = "member"


class HoldState(StrEnum):
    """A hold resolves exactly once: pending → settled | released | expired."""

    PENDING = "pending"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


class ModelKind(StrEnum):
    """What a catalogued model does, which decides the token kind it is charged in."""

    CHAT = "chat"
    EMBEDDING = "embedding"
    TRANSCRIPTION = "transcription"
    """Speech to text for dataset uploads, charged in training tokens like the embedding."""

    @property
    def trains(self) -> bool:
        """Its work fills datasets, so it is charged in training tokens."""
        return self is not ModelKind.CHAT


class PurchaseKind(StrEnum):
    """A subscription line lasts a term; a top-up counts for one month only."""

    SUBSCRIPTION = "subscription"
    TOPUP = "topup"


class Term(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"


Progress = Callable[[str, int, int], None]
"""Told `(stage, done, total)` as long work advances: pages OCR'd, seconds transcribed."""
