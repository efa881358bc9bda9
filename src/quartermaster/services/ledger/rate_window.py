"""Per-member rate limits, enforced in the reserve's transaction with one conditional upsert on
the member's window for this minute, so they hold across every gateway process. A refused or
failed reserve rolls its count back with everything else."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Insert, Integer, and_, bindparam, delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.rate_limits import Limits, minute_of, refusal
from quartermaster.services.context import Context
from quartermaster.services.ledger.sql import params
from quartermaster.store.db import dialect_name
from quartermaster.store.models import RateWindow
from quartermaster.store.models.base import table_of

KEEP = timedelta(minutes=5)


async def take(
    session: AsyncSession, user_id: int, limits: Limits, tokens: int, now: datetime
) -> None:
    """Count one call of `tokens` into this minute, or raise TooManyRequests (nothing counted)."""
    if not limits.active:
        return
    if not fits_a_window(limits, tokens):
        raise refusal(limits, tokens, now)
    counting = counted(dialect_name(session))
    values = window_params(user_id, limits, tokens, now)
    if (await session.execute(counting, values)).first() is None:
        raise refusal(limits, tokens, now)


def fits_a_window(limits: Limits, tokens: int) -> bool:
    """Whether a call of `tokens` could ever fit a minute (`counted` inserts a minute's first
    call unchecked)."""
    return limits.tokens_per_minute is None or tokens <= limits.tokens_per_minute


def window_params(user_id: int, limits: Limits, tokens: int, now: datetime) -> dict[str, Any]:
    """The bound parameters of `counted`."""
    return params(
        {
            "user_id": user_id,
            "minute": minute_of(now),
            "rpm": limits.requests_per_minute,
            "tpm": limits.tokens_per_minute,
            "tokens": tokens,
        }
    )


@cache
def counted(dialect: str) -> Insert:
    """One more call of `b_tokens` in the member's window for `b_minute`: one conditional upsert,
    so the check and the count are one step for every process. It returns no row when the call
    would go past `b_rpm` calls or `b_tpm` tokens (NULL: no limit); a minute's first call is
    inserted unchecked (see `fits_a_window`). Built once per dialect: the reserve's fast path
    runs it in the transaction that takes the hold (services/ledger/fast_reserve.py)."""
    table = table_of(RateWindow)
    rpm = bindparam("b_rpm", type_=Integer)
    tpm = bindparam("b_tpm", type_=BigInteger)
    tokens = bindparam("b_tokens", type_=BigInteger)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(
        user_id=bindparam("b_user_id", type_=BigInteger),
        minute=bindparam("b_minute", type_=BigInteger),
        requests=1,
        tokens=tokens,
    )
    within = and_(
        or_(rpm.is_(None), table.c.requests + 1 <= rpm),
        or_(tpm.is_(None), table.c.tokens + tokens <= tpm),
    )
    return statement.on_conflict_do_update(
        index_elements=["user_id", "minute"],
        set_={"requests": table.c.requests + 1, "tokens": table.c.tokens + tokens},
        where=within,
    ).returning(table.c.requests)


async def prune(ctx: Context) -> int:
    """Drop windows older than a few minutes (the sweeper calls this)."""
    cutoff = minute_of(ctx.clock.now() - KEEP)
    async with ctx.uow.begin() as tx:
        result = await tx.session.execute(delete(RateWindow).where(RateWindow.minute < cutoff))
        await tx.commit()
    return int(getattr(result, "rowcount", 0) or 0)
