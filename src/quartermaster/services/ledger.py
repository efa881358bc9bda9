"""The token ledger's booking step: one usage event, the counter and the monthly roll-up,
always together in the caller's transaction, so Σ events = counters.used = Σ roll-ups holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.types import TokenKind
from quartermaster.store.models import UsageCounter, UsageEvent, UsageMonthly
from quartermaster.store.upsert import add_to


@dataclass(frozen=True)
class Usage:
    """A settled charge in platform tokens, with the rates in force at the call."""

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
    held: int = 0
    status: str = "ok"


def rollup_key(usage: Usage) -> str:
    org = "-" if usage.org_id is None else str(usage.org_id)
    return f"{org}:{usage.user_id}:{usage.period}:{usage.kind.value}:{usage.model_id}"


async def book(session: AsyncSession, usage: Usage, now: datetime) -> None:
    """Record `usage`: event, counter and roll-up move together or not at all."""
    assert usage.tokens >= 0, "a charge is never negative"
    session.add(
        UsageEvent(
            request_id=usage.request_id,
            user_id=usage.user_id,
            org_id=usage.org_id,
            model_id=usage.model_id,
            period=usage.period,
            kind=usage.kind.value,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            tokens=usage.tokens,
            input_rate=usage.input_rate,
            output_rate=usage.output_rate,
            held=usage.held,
            overrun=max(0, usage.tokens - usage.held) if usage.held else 0,
            status=usage.status,
            created_at=now,
        )
    )
    await session.flush()
    await add_to(
        session,
        UsageCounter.__table__,
        {"user_id": usage.user_id, "period": usage.period, "kind": usage.kind.value},
        {"used": usage.tokens},
        {"reserved": 0},
    )
    await add_to(
        session,
        UsageMonthly.__table__,
        {"rollup_key": rollup_key(usage)},
        {"tokens": usage.tokens, "requests": 1},
        {
            "org_id": usage.org_id,
            "user_id": usage.user_id,
            "period": usage.period,
            "kind": usage.kind.value,
            "model_id": usage.model_id,
        },
    )
