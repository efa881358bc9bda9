"""Individual plans: what a plan gives each month, when a month is paid for, and refills.

Changing plan takes effect at once and is not pro-rated: the new plan's full monthly caps apply
to the current month, against the usage the month already has. An upgrade is usable at once; a
downgrade below this month's usage refuses further calls until the 1st. A refill raises one kind
of cap for one month only, so nothing carries over.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from quartermaster.domain.amounts import MAX_TOKEN_AMOUNT
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.periods import parse_period, shift_period
from quartermaster.domain.types import Term, TokenKind

MAX_PLAN_NAME = 64


@dataclass(frozen=True)
class PlanTerms:
    name: str
    monthly_inference_tokens: int
    monthly_training_tokens: int
    price_monthly: Decimal
    price_yearly: Decimal
    models_allowed: tuple[str, ...] | None = None
    active: bool = True
    is_default: bool = False

    @property
    def free(self) -> bool:
        return self.price_monthly == 0 and self.price_yearly == 0

    def monthly_tokens(self, kind: TokenKind) -> int:
        if kind is TokenKind.INFERENCE:
            return self.monthly_inference_tokens
        return self.monthly_training_tokens

    def price(self, term: Term) -> Decimal:
        return self.price_yearly if term is Term.YEARLY else self.price_monthly


def check_terms(terms: PlanTerms) -> None:
    """Refuse a plan that cannot work, naming every problem at once."""
    problems = []
    if not terms.name.strip() or len(terms.name) > MAX_PLAN_NAME:
        problems.append(f"name must be 1 to {MAX_PLAN_NAME} characters")
    if terms.monthly_inference_tokens < 0 or terms.monthly_training_tokens < 0:
        problems.append("monthly tokens cannot be negative")
    if max(terms.monthly_inference_tokens, terms.monthly_training_tokens) > MAX_TOKEN_AMOUNT:
        problems.append(f"monthly tokens are at most {MAX_TOKEN_AMOUNT:,}")
    if terms.price_monthly < 0 or terms.price_yearly < 0:
        problems.append("prices cannot be negative")
    if terms.is_default and not (terms.free and terms.active):
        problems.append("the default plan must be free and active")
    if problems:
        raise InvalidInput("; ".join(problems), param="plan")


def covered_periods(term: Term, first: str) -> tuple[str, str]:
    """The months one payment for `term` starting at `first` covers, inclusive."""
    parse_period(first)
    return first, shift_period(first, 11 if term is Term.YEARLY else 0)


def is_covered(period: str, spans: list[tuple[str, str]]) -> bool:
    """Whether a payment span covers `period` (YYYY-MM compares in calendar order)."""
    return any(start <= period <= end for start, end in spans)


def cap(terms: PlanTerms, kind: TokenKind, refills: list[int]) -> int:
    """The month's cap: the plan's monthly tokens plus that month's refills of this kind."""
    return terms.monthly_tokens(kind) + sum(refills)
