"""INSERT … ON CONFLICT DO UPDATE in one statement, on either database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.store.db import dialect_name


async def add_to(
    session: AsyncSession,
    table: Table,
    keys: dict[str, Any],
    increments: dict[str, int],
    extra: dict[str, Any] | None = None,
) -> None:
    """Insert the row identified by `keys`, or add `increments` to the one already there.

    Atomic on both databases, so concurrent writers never lose an increment.
    """
    statement = _insert(session)(table).values(**keys, **increments, **(extra or {}))
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in increments},
    )
    await session.execute(statement)


async def insert_missing(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Insert `row` unless a row with the same key exists (INSERT … ON CONFLICT DO NOTHING).

    Lets a following UPDATE find its row without a read-then-write race between processes.
    """
    await session.execute(_insert(session)(table).values(**row).on_conflict_do_nothing())


def _insert(session: AsyncSession) -> Callable[[Table], Any]:
    """The dialect's INSERT, which is the one that knows ON CONFLICT."""
    return postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE matched: the verdict of a conditional update."""
    return cast(CursorResult[Any], result).rowcount
