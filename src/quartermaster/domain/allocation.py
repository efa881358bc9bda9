"""Handing out the pool: per-member minimum, the balance left, and bulk plans.

The sum of active members' caps never exceeds what the org bought for the month, per kind. When
the pool shrinks under the assignments (a top-up ends with its month, a line lapses) the org is
*over-assigned*: lowering caps stays allowed, raising any is refused until the sum fits again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from quartermaster.domain.amounts import check_token_amount
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.types import TokenKind


@dataclass(frozen=True)
class Balance:
    """One kind of token in one month: bought, handed out, and what is left to hand out."""

    kind: TokenKind
    purchased: int
    assigned: int

    @property
    def left(self) -> int:
        return self.purchased - self.assigned

    @property
    def over_assigned(self) -> bool:
        return self.assigned > self.purchased


def check_caps(max_inference_tokens: int, max_training_tokens: int, minimum: int) -> None:
    """Caps are whole tokens, training never negative, inference at least the org's minimum."""
    check_token_amount(max_training_tokens, "max_training_tokens")
    check_token_amount(max_inference_tokens, "max_inference_tokens")
    if max_inference_tokens < minimum:
        raise InvalidInput(
            f"every member needs at least {minimum:,} inference tokens "
            f"(got {max_inference_tokens:,})",
            param="max_inference_tokens",
            code="below_minimum",
        )


def check_fits(balance: Balance, before: int, after: int, period: str) -> None:
    """Refuse raising a cap past the pool; lowering is always allowed (it is how an
    over-assigned org gets back within its pool). The message says the balance left."""
    if after <= before or balance.assigned - before + after <= balance.purchased:
        return
    kind = balance.kind.value
    details = {"kind": kind, "period": period, "balance_left": balance.left}
    if balance.over_assigned:
        raise InvalidInput(
            f"the org has assigned {-balance.left:,} more {kind} tokens than it bought for "
            f"{period}; lower allocations until they fit before raising any",
            param=f"max_{kind}_tokens",
            code="over_assigned",
            details=details,
        )
    raise InvalidInput(
        f"only {balance.left:,} {kind} tokens are left to assign for {period} "
        f"({balance.purchased:,} bought, {balance.assigned:,} assigned); "
        f"this needs {after - before:,} more",
        param=f"max_{kind}_tokens",
        code="pool_exhausted",
        details=details,
    )


class Strategy(StrEnum):
    EVEN = "even"
    """The pool split evenly among the members."""
    PERCENTAGE = "percentage"
    """Each member gets this percentage of the pool."""
    FIXED = "fixed"
    """Each member gets this amount."""


@dataclass(frozen=True)
class BulkRule:
    kind: TokenKind
    strategy: Strategy
    amount: int | None = None
    percent: Decimal | None = None
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Seat:
    """A member's current cap of the plan's kind, with the version an apply must still see."""

    membership_id: int
    user_id: int
    email: str
    version: int
    current: int


@dataclass(frozen=True)
class PlanRow:
    membership_id: int
    user_id: int
    email: str
    version: int
    before: int
    after: int


@dataclass(frozen=True)
class BulkPlan:
    kind: TokenKind
    purchased: int
    assigned_before: int
    rows: list[PlanRow]

    @property
    def assigned_after(self) -> int:
        return self.assigned_before + sum(row.after - row.before for row in self.rows)

    @property
    def balance_after(self) -> int:
        return self.purchased - self.assigned_after

    @property
    def fits(self) -> bool:
        return self.balance_after >= 0

    @property
    def plan_hash(self) -> str:
        """Changes when anything the plan rests on changes: pool, caps, versions, the result."""
        body = {
            "kind": self.kind.value,
            "purchased": self.purchased,
            "assigned_before": self.assigned_before,
            "rows": [[r.membership_id, r.version, r.before, r.after] for r in self.rows],
        }
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def _bounds(rule: BulkRule, org_minimum: int) -> tuple[int, int | None]:
    for bound, name in ((rule.minimum, "minimum"), (rule.maximum, "maximum")):
        if bound is not None:
            check_token_amount(bound, name)
    low = max(rule.minimum or 0, org_minimum if rule.kind is TokenKind.INFERENCE else 0)
    if rule.maximum is not None and rule.maximum < low:
        raise InvalidInput(
            f"maximum {rule.maximum:,} is below the minimum {low:,}", param="maximum"
        )
    return low, rule.maximum


def _target(rule: BulkRule, purchased: int, members: int) -> int:
    if rule.strategy is Strategy.EVEN:
        return purchased // members
    if rule.strategy is Strategy.PERCENTAGE:
        if rule.percent is None or not Decimal(0) < rule.percent <= Decimal(100):
            raise InvalidInput("percent must be above 0 and at most 100", param="percent")
        share = purchased * rule.percent / Decimal(100)
        return int(share.to_integral_value(rounding=ROUND_FLOOR))
    if rule.amount is None or rule.amount < 0:
        raise InvalidInput("a fixed split needs an amount of 0 or more", param="amount")
    return check_token_amount(rule.amount, "amount")


def plan_bulk(rule: BulkRule, seats: list[Seat], purchased: int, org_minimum: int) -> BulkPlan:
    """Every member's cap of `rule.kind` before and after, clamped to [minimum, maximum]."""
    if not seats:
        raise InvalidInput("the organization has no members to allocate to")
    low, high = _bounds(rule, org_minimum)
    target = max(_target(rule, purchased, len(seats)), low)
    after = target if high is None else min(target, high)
    rows = [
        PlanRow(s.membership_id, s.user_id, s.email, s.version, s.current, after) for s in seats
    ]
    return BulkPlan(rule.kind, purchased, sum(s.current for s in seats), rows)
