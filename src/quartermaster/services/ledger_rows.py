"""The rows the ledger writes, built in one place for every path that writes them: the full
transactional path (`ledger.py`) and the single-statement one (`ledger_quick.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from quartermaster.domain import holds
from quartermaster.domain.errors import Conflict
from quartermaster.domain.types import HoldState, TokenKind


@dataclass(frozen=True)
class Usage:
    """A settled charge in platform tokens, with the rates in force at the call.

    `held` is the hold it settles (None for usage booked without one, such as demo history).
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
    held: int | None = None
    status: str = "ok"


def rollup_key(usage: Usage) -> str:
    org = "-" if usage.org_id is None else str(usage.org_id)
    return f"{org}:{usage.user_id}:{usage.period}:{usage.kind.value}:{usage.model_id}"


def event_row(usage: Usage, now: datetime) -> dict[str, Any]:
    """The usage event that records `usage`."""
    return {
        "request_id": usage.request_id,
        "user_id": usage.user_id,
        "org_id": usage.org_id,
        "model_id": usage.model_id,
        "period": usage.period,
        "kind": usage.kind.value,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
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
    }
    return {"rollup_key": rollup_key(usage)}, {"tokens": usage.tokens, "requests": 1}, extra


def hold_row(
    request_id: str, user_id: int, org_id: int | None, model_id: int, period: str, **more: Any
) -> dict[str, Any]:
    """The holds row both reserve paths insert (amount, rates and times in `more`)."""
    return {
        "request_id": request_id,
        "user_id": user_id,
        "org_id": org_id,
        "model_id": model_id,
        "period": period,
        "state": HoldState.PENDING.value,
        **more,
    }


def duplicate(request_id: str) -> Conflict:
    return Conflict(
        f"request id {request_id!r} was already used for another hold",
        param="request_id",
        code="duplicate_request_id",
    )
