"""Folding closed months into summaries, off the settle path, so the org's statistics and the
user table sorted by total usage add up a row per member and a row per month instead of every
roll-up of every month.

A month is folded once it has ended in every time zone (`domain.periods.last_closed_period`)
and none of its holds is pending: from then on the only booking into it is a late settlement
(an expired hold charged after all, whenever its call ends). So a fold keeps the on-time usage
of the folded months (`store/models/usage_folds.py`) and readers add the late events to it from
the events themselves, in the same statement as the rest: what they show is exact whenever they
read it, however late a settlement arrives. Writers that book into past months by other means
(the demo's history) `forget` the fold. Each server process runs `run_folder`; a fold rebuilds
every summary in one snapshot, so the next one also repairs anything a past one missed.

Errors: none of its own. Two processes folding at once on PostgreSQL: one fails with a
serialization error and is retried on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.periods import last_closed_period
from quartermaster.domain.types import HoldState
from quartermaster.services.context import Context
from quartermaster.store.db import dialect_name
from quartermaster.store.models import (
    FoldedOrgUsage,
    FoldedUserUsage,
    Hold,
    UsageCounter,
    UsageEvent,
    UsageFold,
    UsageMonthly,
)
from quartermaster.store.models.base import table_of
from quartermaster.store.models.usage_folds import LATE
from quartermaster.store.upsert import insert_missing

log = logging.getLogger(__name__)

FOLD_INTERVAL_S = 300.0
STATE_ID = 1


def late() -> ColumnElement[bool]:
    """Late events, written as the partial index's own predicate so both databases use it."""
    return UsageEvent.status == literal_column(f"'{LATE}'")


def folded_through(closed: str) -> ScalarSelect[Any]:
    """The fold's last period, as a subquery of the reader's own statement so it agrees with the
    summaries read beside it; NULL without a fold, or when the fold is ahead of `closed` (the
    reader's own last closed month: a clock set back, or a folder's clock running fast)."""
    return (
        select(UsageFold.through_period)
        .where(UsageFold.id == STATE_ID, UsageFold.through_period <= closed)
        .scalar_subquery()
    )


async def fold(ctx: Context) -> str | None:
    """Fold every closed month, unless the fold is already there or a hold of those months is
    still pending (retried next time); returns the period folded through when it moved."""
    now = ctx.clock.now()
    target = last_closed_period(now)
    async with ctx.uow.begin() as tx:
        session = tx.session
        if dialect_name(session) == "postgresql":
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await insert_missing(session, table_of(UsageFold), {"id": STATE_ID})
        through = await session.scalar(
            select(UsageFold.through_period).where(UsageFold.id == STATE_ID).with_for_update()
        )
        if (through is not None and through >= target) or await _pending(session, target):
            return None
        await _clear(session)
        await session.execute(_fold_users(target))
        await session.execute(_fold_orgs(target))
        await _mark(session, target, now)
        await tx.commit()
    return target


async def forget(session: AsyncSession) -> None:
    """Drop the fold, in the caller's transaction, before booking into a past month other than
    by a late settlement; readers add everything up from the roll-ups until the next fold."""
    await insert_missing(session, table_of(UsageFold), {"id": STATE_ID})
    await _mark(session, None, None)
    await _clear(session)


async def run_folder(ctx: Context, interval_s: float = FOLD_INTERVAL_S) -> None:
    """Fold every `interval_s` until cancelled; the server runs one per process. A failed fold
    (database unreachable, another process folding) is logged and retried on the next tick."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            folded = await fold(ctx)
        except Exception:
            log.exception("folding closed months failed; retrying in %.0f s", interval_s)
            continue
        if folded:
            log.info("usage folded through %s", folded)


async def _pending(session: AsyncSession, target: str) -> bool:
    """Whether a hold of a closed month is pending: its settlement would book on time."""
    query = select(Hold.id).where(Hold.state == HoldState.PENDING.value, Hold.period <= target)
    return await session.scalar(query.limit(1)) is not None


async def _clear(session: AsyncSession) -> None:
    await session.execute(delete(FoldedUserUsage))
    await session.execute(delete(FoldedOrgUsage))


async def _mark(session: AsyncSession, through: str | None, at: Any) -> None:
    values = {"through_period": through, "folded_at": at}
    await session.execute(update(UsageFold).where(UsageFold.id == STATE_ID).values(**values))


def _fold_users(target: str) -> Any:
    """Each user's counters up to `target`, less their late events there."""
    rows = union_all(
        select(UsageCounter.user_id, UsageCounter.used.label("tokens")).where(
            UsageCounter.period <= target
        ),
        select(UsageEvent.user_id, -UsageEvent.tokens).where(late(), UsageEvent.period <= target),
    ).subquery()
    sums = select(rows.c.user_id, func.sum(rows.c.tokens)).group_by(rows.c.user_id)
    return insert(FoldedUserUsage).from_select(["user_id", "tokens"], sums)


def _fold_orgs(target: str) -> Any:
    """Each org's roll-ups up to `target` by period, kind, model and route, less its late
    events."""
    monthly, event = UsageMonthly, UsageEvent
    keys = ("org_id", "period", "kind", "model_id", "route")
    rows = union_all(
        select(*(getattr(monthly, k) for k in keys), monthly.tokens, monthly.requests).where(
            monthly.org_id.is_not(None), monthly.period <= target
        ),
        select(*(getattr(event, k) for k in keys), -event.tokens, literal(-1)).where(
            late(), event.org_id.is_not(None), event.period <= target
        ),
    ).subquery()
    group = [rows.c[k] for k in keys]
    sums = select(*group, func.sum(rows.c.tokens), func.sum(rows.c.requests)).group_by(*group)
    return insert(FoldedOrgUsage).from_select([*keys, "tokens", "requests"], sums)
