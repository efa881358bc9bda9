"""The member's counter row for (period, kind): the one row a reserve updates, so the cap check
and the increment are a single statement that no concurrent writer can slip between."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain import holds
from quartermaster.domain.types import TokenKind
from quartermaster.store.models import UsageCounter
from quartermaster.store.models.base import table_of
from quartermaster.store.upsert import insert_missing, rows_changed

CounterKey = tuple[int, str, TokenKind]


def counter_is(key: CounterKey) -> list[ColumnElement[bool]]:
    user_id, period, kind = key
    return [
        UsageCounter.user_id == user_id,
        UsageCounter.period == period,
        UsageCounter.kind == kind.value,
    ]


def fits_under(
    amount: int | ColumnElement[int], cap: int | ColumnElement[int]
) -> ColumnElement[bool]:
    """The reserve rule, on the counter row: what is used and held, plus `amount`, is at most
    `cap`. Both paths' conditional UPDATEs evaluate it (`take`, fast_reserve.py), so the cap
    check and the increment are one statement."""
    return UsageCounter.used + UsageCounter.reserved + amount <= cap


async def take(session: AsyncSession, key: CounterKey, amount: int, cap: int) -> None:
    """The reserve itself: one conditional UPDATE, refused (and rolled back) if it does not fit.

    The counter row usually exists (the month's first call made it), so the UPDATE goes first.
    When it matched nothing, the row may be missing, or a concurrent first call may have
    committed it after this UPDATE began (its snapshot did not see the row): the row is made
    sure of, and only a second UPDATE that matches nothing is a refusal."""
    if await _fits(session, key, amount, cap):
        return
    user_id, period, kind = key
    row = {"user_id": user_id, "period": period, "kind": kind.value, "used": 0, "reserved": 0}
    await insert_missing(session, table_of(UsageCounter), row)
    if await _fits(session, key, amount, cap):
        return
    counter = (
        await session.execute(
            select(UsageCounter.used, UsageCounter.reserved).where(*counter_is(key))
        )
    ).one()
    raise holds.refusal(amount, cap, counter.used, counter.reserved, period, kind)


async def _fits(session: AsyncSession, key: CounterKey, amount: int, cap: int) -> bool:
    result = await session.execute(
        update(UsageCounter)
        .where(*counter_is(key), fits_under(amount, cap))
        .values(reserved=UsageCounter.reserved + amount)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1


async def unreserve(session: AsyncSession, key: CounterKey, amount: int) -> None:
    await session.execute(
        update(UsageCounter)
        .where(*counter_is(key))
        .values(reserved=UsageCounter.reserved - amount)
        .execution_options(synchronize_session=False)
    )


async def charge(session: AsyncSession, key: CounterKey, tokens: int, released: int) -> None:
    """Settle on the counter: the hold's `released` tokens leave `reserved`, `tokens` join
    `used`, in one statement (the row exists: the reserve made it)."""
    await session.execute(
        update(UsageCounter)
        .where(*counter_is(key))
        .values(used=UsageCounter.used + tokens, reserved=UsageCounter.reserved - released)
        .execution_options(synchronize_session=False)
    )
