"""Token statistics: the org's usage by month and year, inference against training, request
counts, the breakdowns by model and by route, and a projection of the current month's end
(admins); and a member's own caps, usage, what is left and when it resets. The org's figures
come from the folded closed months plus the roll-ups since (`services/metrics/org_usage.py`); a
member's from their roll-ups and counters."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.periods import (
    last_closed_period,
    parse_period,
    period_end,
    period_of,
    period_start,
)
from quartermaster.domain.principal import Principal
from quartermaster.domain.projection import Projection, project_month_end
from quartermaster.domain.types import TokenKind
from quartermaster.domain.usage_table import UsageRow, monthly_table, yearly_table
from quartermaster.services.context import Context
from quartermaster.services.enterprise.org_pool import get_org
from quartermaster.services.ledger import spending
from quartermaster.services.metrics import org_usage, report_reads
from quartermaster.store.models import UsageCounter, UsageMonthly


async def _monthly(
    session: AsyncSession, scope: ColumnElement[bool], last: str | None = None
) -> list[UsageRow]:
    """The monthly data table of the roll-ups matching `scope`, in one grouped query."""
    sums = await session.execute(
        select(
            UsageMonthly.period,
            UsageMonthly.kind,
            func.sum(UsageMonthly.tokens),
            func.sum(UsageMonthly.requests),
        )
        .where(scope)
        .group_by(UsageMonthly.period, UsageMonthly.kind)
    )
    return monthly_table(((p, TokenKind(k), int(t), int(r)) for p, k, t, r in sums), last)


async def monthly_rows(
    session: AsyncSession, org_id: int, now: datetime, timezone: str
) -> list[UsageRow]:
    """The org's monthly data table up to the current month in `timezone`."""
    sums = await org_usage.by_model_and_month(session, org_id, last_closed_period(now))
    return _months(sums, period_of(now, timezone))


def _months(sums: list[org_usage.ModelMonth], last: str) -> list[UsageRow]:
    return monthly_table(((s.period, s.kind, s.tokens, s.requests) for s in sums), last)


def by_model(sums: list[org_usage.ModelMonth], period: str | None) -> list[dict[str, Any]]:
    """Tokens and requests by model and kind, all time or in `period`, the most used first."""
    return _ranked(sums, period, "model")


def by_route(sums: list[org_usage.ModelMonth], period: str | None) -> list[dict[str, Any]]:
    """Tokens and requests by route and kind, all time or in `period`, the most used first."""
    return _ranked(sums, period, "route")


def _ranked(
    sums: list[org_usage.ModelMonth], period: str | None, by: Literal["model", "route"]
) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str], list[int]] = {}
    for s in sums:
        if period is None or s.period == period:
            total = totals.setdefault((getattr(s, by), s.kind.value), [0, 0])
            total[0] += s.tokens
            total[1] += s.requests
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        {by: name, "kind": kind, "tokens": tokens, "requests": requests}
        for (name, kind), (tokens, requests) in ranked
    ]


def _projection(projection: Projection) -> dict[str, Any]:
    view = asdict(projection)
    at = projection.exhausted_at
    view["exhausted_at"] = at.isoformat() if at else None
    return view


async def org_statistics(
    ctx: Context, principal: Principal, org_id: int, model_period: str | None = None
) -> dict[str, Any]:
    """Months, years, models and routes (all time, or `model_period` only) and this month's
    projection."""
    if model_period is not None:
        parse_period(model_period)
    now = ctx.clock.now()
    async with report_reads.admin_report(ctx, principal, org_id) as session:
        org = await get_org(session, org_id)
        current = period_of(now, org.timezone)
        sums = await org_usage.by_model_and_month(session, org_id, last_closed_period(now))
        pool = await spending.pool_of(session, org_id, current)
    months = _months(sums, current)
    this = next((row for row in months if row.period == current), UsageRow(current))
    start, end = period_start(current, org.timezone), period_end(current, org.timezone)
    return {
        "org_id": org_id,
        "name": org.name,
        "timezone": org.timezone,
        "current_month": current,
        "months": [row.as_dict() for row in months],
        "years": [row.as_dict() for row in yearly_table(months)],
        "models": by_model(sums, model_period),
        "routes": by_route(sums, model_period),
        "models_period": model_period,
        "projection": {
            "method": "linear burn rate since the 1st (docs/metrics.md)",
            "inference": _projection(
                project_month_end(this.inference_tokens, start, end, now, pool.inference_tokens)
            ),
            "training": _projection(
                project_month_end(this.training_tokens, start, end, now, pool.training_tokens)
            ),
        },
    }


def _kind_view(cap: int | None, used: int, reserved: int) -> dict[str, int | None]:
    left = None if cap is None else max(0, cap - used - reserved)
    return {"cap": cap, "used": used, "reserved": reserved, "left": left}


async def counters(session: AsyncSession, user_id: int, period: str) -> dict[str, tuple[int, int]]:
    """(used, reserved) per kind for the user's month; kinds never used are absent."""
    rows = await session.execute(
        select(UsageCounter.kind, UsageCounter.used, UsageCounter.reserved).where(
            UsageCounter.user_id == user_id, UsageCounter.period == period
        )
    )
    return {kind: (int(used), int(reserved)) for kind, used, reserved in rows}


async def my_usage(ctx: Context, principal: Principal) -> dict[str, Any]:
    """The member's window: caps, used, on hold, left, reset moment, and every past month."""
    user_id, now = principal.uid, ctx.clock.now()
    async with ctx.uow.begin(write=False) as tx:
        session = tx.session
        standing = await spending.standing_of(session, user_id)
        timezone = standing.timezone
        period = period_of(now, timezone)
        this_month = await counters(session, user_id, period)
        kinds = {}
        for kind in TokenKind:
            cap = await spending.cap_of(session, standing, kind, period)
            kinds[kind.value] = _kind_view(cap, *this_month.get(kind.value, (0, 0)))
        history = await _history(session, user_id)
    return {
        "user_id": user_id,
        "org_id": standing.org_id,
        "banned": standing.banned,
        "paid": standing.paid,
        "current_month": period,
        "resets_at": period_end(period, timezone).isoformat(),
        **kinds,
        "lifetime_tokens": sum(row.total_tokens for row in history),
        "months": [row.as_dict() for row in reversed(history)],
    }


async def _history(session: AsyncSession, user_id: int) -> list[UsageRow]:
    return await _monthly(session, UsageMonthly.user_id == user_id)
