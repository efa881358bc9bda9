"""An org's usage by period, kind, model and route, for its statistics and exports: the folded
months' summary rows, the late settlements booked into them since, and the roll-ups of the
months after the fold (`services/ledger/fold.py`), added up in one statement so the three always
agree. The current month is always read from its roll-ups, so a call settled a moment ago is in
it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.types import TokenKind
from quartermaster.services.ledger.fold import folded_through, late
from quartermaster.store.models import FoldedOrgUsage, ModelCatalogEntry, UsageEvent, UsageMonthly


@dataclass(frozen=True)
class ModelMonth:
    """Tokens and requests of one model and kind, by one route, in one month."""

    period: str
    kind: TokenKind
    model: str
    route: str
    tokens: int
    requests: int


KEYS = ("period", "kind", "model_id", "route")


def _rows(org_id: int, closed: str) -> Any:
    """(period, kind, model_id, route, tokens, requests) rows that add up to the org's usage;
    the live months are summed before they meet the rest, so the final sum handles a few rows."""
    through = folded_through(closed)
    folded, event, monthly = FoldedOrgUsage, UsageEvent, UsageMonthly
    live = [getattr(monthly, key) for key in KEYS]
    return union_all(
        select(*(getattr(folded, key) for key in KEYS), folded.tokens, folded.requests).where(
            folded.org_id == org_id, folded.period <= through
        ),
        select(*(getattr(event, key) for key in KEYS), event.tokens, literal(1)).where(
            late(), event.org_id == org_id, event.period <= through
        ),
        select(*live, func.sum(monthly.tokens), func.sum(monthly.requests))
        .where(monthly.org_id == org_id, monthly.period > func.coalesce(through, ""))
        .group_by(*live),
    ).subquery()


async def by_model_and_month(session: AsyncSession, org_id: int, closed: str) -> list[ModelMonth]:
    """The org's usage per month, kind, model and route; `closed` is the reader's last closed
    month."""
    rows = _rows(org_id, closed)
    group = [rows.c[key] for key in KEYS]
    sums = (
        select(
            *group,
            func.sum(rows.c.tokens).label("tokens"),
            func.sum(rows.c.requests).label("requests"),
        )
        .group_by(*group)
        .subquery()
    )
    names = ModelCatalogEntry
    query = select(
        sums.c.period, sums.c.kind, names.name, sums.c.route, sums.c.tokens, sums.c.requests
    ).join(names, names.id == sums.c.model_id)
    return [
        ModelMonth(period, TokenKind(kind), model, route, int(tokens), int(requests))
        for period, kind, model, route, tokens, requests in await session.execute(query)
    ]
