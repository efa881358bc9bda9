"""The rows the ledger writes, built in one place for every path that writes them: the full
transactional path (`transfers.py`) and the single-statement one (`fast_reserve.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from quartermaster.domain import holds, usage_details
from quartermaster.domain.errors import Conflict
from quartermaster.domain.routes import Route
from quartermaster.domain.types import HoldState, TokenKind


class Owner(Protocol):
    """Whose hold, against which model and month, by which route: a hold row, a receipt, a
    planned hold."""

    @property
    def user_id(self) -> int: ...
    @property
    def org_id(self) -> int | None: ...
    @property
    def model_id(self) -> int: ...
    @property
    def period(self) -> str: ...
    @property
    def route(self) -> str: ...


class HeldRow(Owner, Protocol):
    """A hold as its row says: whose, how much, at which rates (a `Hold`, or the row a claim
    returned)."""

    @property
    def kind(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def input_rate(self) -> Decimal: ...
    @property
    def output_rate(self) -> Decimal: ...


@dataclass(frozen=True)
class Planned:
    """Whose hold is about to be written (an `Owner`)."""

    user_id: int
    org_id: int | None
    model_id: int
    period: str
    route: Route


@dataclass(frozen=True)
class Usage:
    """A settled charge in platform tokens, with the rates in force at the call and the route
    it came by.

    `held` is the hold it settles (None for usage booked without one, such as demo history).
    `cached_tokens` and `reasoning_tokens` are parts of the prompt and completion tokens
    (domain/usage_details.py).
    """

    request_id: str
    user_id: int
    org_id: int | None
    model_id: int
    period: str
    kind: TokenKind
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    input_rate: Decimal
    output_rate: Decimal
    route: Route
    held: int | None = None
    status: str = "ok"
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        usage_details.require_parts(
            self.prompt_tokens, self.completion_tokens, self.cached_tokens, self.reasoning_tokens
        )


def rollup_key(usage: Usage) -> str:
    org = "-" if usage.org_id is None else str(usage.org_id)
    return (
        f"{org}:{usage.user_id}:{usage.period}:{usage.kind.value}:{usage.model_id}:"
        f"{usage.route.value}"
    )


def event_row(usage: Usage, now: datetime) -> dict[str, Any]:
    """The usage event that records `usage`."""
    return {
        "request_id": usage.request_id,
        "user_id": usage.user_id,
        "org_id": usage.org_id,
        "model_id": usage.model_id,
        "period": usage.period,
        "kind": usage.kind.value,
        "route": usage.route.value,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "tokens": usage.tokens,
        "input_rate": usage.input_rate,
        "output_rate": usage.output_rate,
        "held": usage.held or 0,
        "overrun": 0 if usage.held is None else holds.overrun(usage.tokens, usage.held),
        "status": usage.status,
        "created_at": now,
    }


def rollup_row(usage: Usage) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
    """The monthly roll-up's key, the increments `usage` adds, and the rest of a new row."""
    extra = {
        "org_id": usage.org_id,
        "user_id": usage.user_id,
        "period": usage.period,
        "kind": usage.kind.value,
        "model_id": usage.model_id,
        "route": usage.route.value,
    }
    return {"rollup_key": rollup_key(usage)}, {"tokens": usage.tokens, "requests": 1}, extra


def hold_row(
    request_id: str,
    owner: Owner,
    rates: holds.Rates,
    amount: int,
    created_at: datetime,
    expires_at: datetime,
) -> dict[str, Any]:
    """The holds row both reserve paths insert."""
    return {
        "request_id": request_id,
        "user_id": owner.user_id,
        "org_id": owner.org_id,
        "model_id": owner.model_id,
        "period": owner.period,
        "state": HoldState.PENDING.value,
        "kind": rates.kind.value,
        "route": owner.route,
        "amount": amount,
        "input_rate": rates.input_rate,
        "output_rate": rates.output_rate,
        "created_at": created_at,
        "expires_at": expires_at,
    }


def charged(
    request_id: str,
    owner: Owner,
    rates: holds.Rates,
    held: int,
    prompt_tokens: int,
    completion_tokens: int,
    status: str = "ok",
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Usage:
    """The usage a hold of `held` books for these counts, at the hold's rates, by its route."""
    return Usage(
        request_id=request_id,
        user_id=owner.user_id,
        org_id=owner.org_id,
        model_id=owner.model_id,
        period=owner.period,
        kind=rates.kind,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        tokens=holds.charge(rates, prompt_tokens, completion_tokens),
        input_rate=rates.input_rate,
        output_rate=rates.output_rate,
        route=Route(owner.route),
        held=held,
        status=status,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
    )


def duplicate(request_id: str) -> Conflict:
    return Conflict(
        f"request id {request_id!r} was already used for another hold",
        param="request_id",
        code="duplicate_request_id",
    )
