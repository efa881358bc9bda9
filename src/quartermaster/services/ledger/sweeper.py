"""Holds whose deadline passed are expired and their tokens freed, by a sweeper that every server
process runs: a process that died mid-call (kill -9, a lost host) leaves its holds to it, so
their tokens come back within the hold's time to live plus one sweep interval."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import update

from quartermaster.domain.types import HoldState, TokenKind
from quartermaster.services.context import Context
from quartermaster.services.ledger import rate_window
from quartermaster.services.ledger.counters import unreserve
from quartermaster.store.models import Hold

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 30.0


async def sweep_expired(ctx: Context) -> int:
    """Expire every pending hold past its deadline and free its tokens; returns how many.

    One UPDATE … RETURNING claims the holds, so concurrent sweepers (one per server process)
    never free the same hold twice; counters are then adjusted in key order.
    """
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        claimed = (
            await tx.session.execute(
                update(Hold)
                .where(Hold.state == HoldState.PENDING.value, Hold.expires_at <= now)
                .values(state=HoldState.EXPIRED.value, resolved_at=now)
                .returning(Hold.user_id, Hold.period, Hold.kind, Hold.amount)
                .execution_options(synchronize_session=False)
            )
        ).all()
        freed: dict[tuple[int, str, str], int] = {}
        for user_id, period, kind, amount in claimed:
            key = (user_id, period, kind)
            freed[key] = freed.get(key, 0) + amount
        for (user_id, period, kind), amount in sorted(freed.items()):
            await unreserve(tx.session, (user_id, period, TokenKind(kind)), amount)
        await tx.commit()
    return len(claimed)


async def run_sweeper(ctx: Context, interval_s: float = SWEEP_INTERVAL_S) -> None:
    """Sweep expired holds every `interval_s` until cancelled; the server runs one per process.

    A failed sweep (database briefly unreachable) is logged and retried on the next tick, so the
    sweeper outlives outages instead of dying silently.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            expired = await sweep_expired(ctx)
            await rate_window.prune(ctx)
        except Exception:
            log.exception("ledger sweep failed; retrying in %.0f s", interval_s)
            continue
        if expired:
            log.info("ledger sweep expired %d holds", expired)
