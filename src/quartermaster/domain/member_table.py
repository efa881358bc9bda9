"""The admin's user table as a query: which column it is sorted by, which members it shows, and
which page. Checked here once, so the API and the command line refuse bad input alike."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.types import Role

MAX_PAGE = 500


class MemberColumn(StrEnum):
    """Every column of the user table; each one sorts."""

    USER_ID = "user_id"
    EMAIL = "email"
    NAME = "name"
    MFA = "mfa_enabled"
    CAC = "cac_linked"
    ROLE = "role"
    STATUS = "status"
    PAID = "paid"
    BANNED = "banned"
    MAX_INFERENCE = "max_inference_tokens"
    MAX_TRAINING = "max_training_tokens"
    TOTAL = "total_tokens"
    INFERENCE_THIS_MONTH = "inference_this_month"
    INFERENCE_PREVIOUS_MONTH = "inference_previous_month"
    TRAINING_THIS_MONTH = "training_this_month"


USAGE_COLUMNS = frozenset(
    {
        MemberColumn.TOTAL,
        MemberColumn.INFERENCE_THIS_MONTH,
        MemberColumn.INFERENCE_PREVIOUS_MONTH,
        MemberColumn.TRAINING_THIS_MONTH,
    }
)
"""Columns computed from the monthly roll-ups rather than stored on the member."""


class MemberStatus(StrEnum):
    """One status per member: banned wins over unpaid, which wins over paid."""

    PAID = "paid"
    UNPAID = "unpaid"
    BANNED = "banned"


def status_of(paid: bool, banned: bool) -> MemberStatus:
    if banned:
        return MemberStatus.BANNED
    return MemberStatus.PAID if paid else MemberStatus.UNPAID


@dataclass(frozen=True)
class MemberQuery:
    sort: MemberColumn = MemberColumn.USER_ID
    descending: bool = False
    email: str | None = None
    """Shows members whose email contains this text (any case)."""
    role: Role | None = None
    status: MemberStatus | None = None
    limit: int = 50
    offset: int = 0
    after_user_id: int | None = None
    """Keyset paging for exports: members with a larger id, in id order (sort must be user_id)."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        if self.offset < 0:
            raise InvalidInput("offset must be 0 or more", param="offset")
        if self.email is not None and len(self.email) > 320:
            raise InvalidInput("the email filter is at most 320 characters", param="email")
        assert self.after_user_id is None or self.sort is MemberColumn.USER_ID, (
            "keyset paging walks the table in id order"
        )
