"""INSERT … ON CONFLICT DO UPDATE in one statement, on either database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


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
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**keys, **increments, **(extra or {}))
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in increments},
    )
    await session.execute(statement)
