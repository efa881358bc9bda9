"""Token requests: a member asks for more, an admin decides, or the org's rule decides at once.

The auto-approval rule approves a request only when all of these hold: the rule is enabled, the
amount is at most `max_tokens`, the amount is at most `max_pool_pct` percent of the org's pool of
that kind this month, and the amount fits in what is left of the pool. Anything else waits for
an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from quartermaster.domain.allocation import Balance
from quartermaster.domain.amounts import check_token_amount
from quartermaster.domain.errors import InvalidInput

MAX_REASON_CHARS = 2000


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


@dataclass(frozen=True)
class AutoApprovalRule:
    enabled: bool = False
    max_tokens: int = 0
    max_pool_pct: Decimal = Decimal(0)

    def check(self) -> AutoApprovalRule:
        check_token_amount(self.max_tokens, "max_tokens")
        if not Decimal(0) <= self.max_pool_pct <= Decimal(100):
            raise InvalidInput("max_pool_pct must be between 0 and 100", param="max_pool_pct")
        return self


def check_ask(amount: int, reason: str) -> str:
    """A request needs a positive amount and a reason an admin can weigh; returns the reason."""
    if amount <= 0:
        raise InvalidInput("ask for a positive number of tokens", param="amount")
    check_token_amount(amount, "amount")
    cleaned = reason.strip()
    if not cleaned:
        raise InvalidInput("say why you need the tokens", param="reason")
    if len(cleaned) > MAX_REASON_CHARS:
        raise InvalidInput(f"keep the reason under {MAX_REASON_CHARS} characters", param="reason")
    return cleaned


def auto_approves(rule: AutoApprovalRule, amount: int, balance: Balance) -> bool:
    """Whether the rule decides this request at once (see the module docstring)."""
    return (
        rule.enabled
        and amount <= rule.max_tokens
        and Decimal(amount) * 100 <= Decimal(balance.purchased) * rule.max_pool_pct
        and amount <= balance.left
    )
