"""`usage_events` partitioned by month on PostgreSQL: converting the table, reading its
partitions, and adding the months ahead.

The partition key is `period` (the org's month, `YYYY-MM`), not `created_at`: a month's
counters, roll-ups and events then live or go together, so archiving a month
(services/ledger/archive.py) drops whole partitions and `qm ledger check` stays exact. Each
month is `usage_events_YYYY_MM`; `usage_events_default` takes a row whose month has no
partition yet, and `add_months` moves such rows into their month's partition when it creates it.

Everything here runs in the caller's transaction; PostgreSQL's DDL is transactional, so a
failed conversion leaves the table as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.periods import parse_period, shift_period

TABLE = "usage_events"
DEFAULT = f"{TABLE}_default"
KEY = "period"
_OLD = f"{TABLE}_unpartitioned"
_BOUND = re.compile(r"FROM \('(\d{4}-\d{2})'\) TO \('(\d{4}-\d{2})'\)")


@dataclass(frozen=True)
class Partition:
    """One partition: the months [first, end) it holds, or the default (both None)."""

    name: str
    first: str | None
    end: str | None
    rows: int
    """PostgreSQL's estimate (`reltuples`, from the last ANALYZE or VACUUM); -1 if never."""

    def within(self, through: str) -> bool:
        """Whether every month this partition can hold is `through` or earlier."""
        return self.end is not None and self.end <= shift_period(through, 1)


def month_table(period: str) -> str:
    """The partition's name; the month is checked, since it is written into DDL."""
    year, month = parse_period(period)
    return f"{TABLE}_{year:04d}_{month:02d}"


async def is_partitioned(session: AsyncSession) -> bool:
    query = "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t))"
    return bool(await session.scalar(text(query), {"t": TABLE}))


async def listed(session: AsyncSession) -> list[Partition]:
    """The partitions of `usage_events`, months first in order, the default last."""
    rows = await session.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": TABLE},
    )
    found = []
    for name, bound, estimate in rows:
        months = _BOUND.search(bound)
        first, end = months.groups() if months else (None, None)
        found.append(Partition(name, first, end, int(estimate)))
    return sorted(found, key=lambda p: (p.first is None, p.first or "", p.name))


async def convert(session: AsyncSession, months: Iterable[str]) -> list[str]:
    """Turn the plain table into one partitioned by month, in place, keeping every row, column,
    default, check, index, foreign key and the id sequence; a partition for each month with
    rows and each of `months`. The table is locked meanwhile. Returns the partitions made."""
    await session.execute(text(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
    keys = await _unique_keys(session)
    indexes = await _plain_indexes(session)
    foreign = await _foreign_keys(session)
    present = await session.scalars(text(f"SELECT DISTINCT {KEY} FROM {TABLE}"))
    wanted = sorted({*present, *months})
    sequence = await session.scalar(text(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')"))
    await session.execute(text(f"ALTER TABLE {TABLE} RENAME TO {_OLD}"))
    for name in indexes:
        await session.execute(text(f'DROP INDEX "{name}"'))
    for name in keys:
        await session.execute(text(f'ALTER TABLE {_OLD} DROP CONSTRAINT "{name}"'))
    await session.execute(
        text(
            f"CREATE TABLE {TABLE} (LIKE {_OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            f" INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({KEY})"
        )
    )
    for period in wanted:
        await session.execute(text(_month_partition(period)))
    await session.execute(text(f"CREATE TABLE {DEFAULT} PARTITION OF {TABLE} DEFAULT"))
    await session.execute(text(f"INSERT INTO {TABLE} SELECT * FROM {_OLD}"))
    for name, columns in keys.items():
        await session.execute(text(_key_with_period(name, columns)))
    for statement in [*indexes.values(), *foreign]:
        await session.execute(text(statement))
    if sequence:
        await session.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {TABLE}.id"))
    await session.execute(text(f"DROP TABLE {_OLD}"))
    await session.execute(text(f"ANALYZE {TABLE}"))  # autovacuum never analyzes the parent
    return [month_table(period) for period in wanted] + [DEFAULT]


async def add_months(session: AsyncSession, months: Iterable[str]) -> list[str]:
    """Create the partitions of `months` that are missing, moving any of their rows out of the
    default partition first (it cannot keep rows a new partition would hold). Processes doing
    this at once take turns on the default partition's lock; the later ones find nothing to do."""
    wanted = sorted(set(months))
    if not await _missing(session, wanted):
        return []
    await session.execute(text(f"LOCK TABLE {DEFAULT} IN SHARE ROW EXCLUSIVE MODE"))
    made = []
    for period in await _missing(session, wanted):
        name = month_table(period)
        await session.execute(
            text(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        )
        await session.execute(
            text(
                f"WITH moved AS (DELETE FROM {DEFAULT} WHERE {KEY} = :p RETURNING *)"
                f" INSERT INTO {name} SELECT * FROM moved"
            ),
            {"p": period},
        )
        await session.execute(
            text(f"ALTER TABLE {TABLE} ATTACH PARTITION {name} {_bounds(period)}")
        )
        made.append(name)
    return made


async def _missing(session: AsyncSession, months: list[str]) -> list[str]:
    """The months no partition holds (a partition made by hand may hold several)."""
    ranges = [(p.first, p.end) for p in await listed(session) if p.first and p.end]
    return [m for m in months if not any(first <= m < end for first, end in ranges)]


async def drop(session: AsyncSession, partition: Partition) -> None:
    await session.execute(text(f'DROP TABLE "{partition.name}"'))


async def lock_for_archive(session: AsyncSession, partition: Partition) -> None:
    """Hold off inserts into `partition` (a late settlement) until the archive commits, so its
    sums cover every row that is dropped."""
    await session.execute(text(f'LOCK TABLE "{partition.name}" IN SHARE MODE'))


def _bounds(period: str) -> str:
    return f"FOR VALUES FROM ('{period}') TO ('{shift_period(period, 1)}')"


def _month_partition(period: str) -> str:
    return f"CREATE TABLE {month_table(period)} PARTITION OF {TABLE} {_bounds(period)}"


def _key_with_period(name: str, columns: list[str]) -> str:
    """A primary key or unique constraint of a partitioned table must include its partition key:
    `request_id` stays unique within a month (settling is idempotent by the hold's request id)."""
    kind = "PRIMARY KEY" if name.startswith("pk_") else "UNIQUE"
    listed_columns = ", ".join([*columns, *([] if KEY in columns else [KEY])])
    return f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {kind} ({listed_columns})'


async def _unique_keys(session: AsyncSession) -> dict[str, list[str]]:
    """The primary key and unique constraints, by name, with their columns in order."""
    rows = await session.execute(
        text(
            "SELECT c.conname, a.attname FROM pg_constraint c"
            " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
            " WHERE c.conrelid = to_regclass(:t) AND c.contype IN ('p', 'u')"
            " ORDER BY c.contype, c.conname, k.n"
        ),
        {"t": TABLE},
    )
    keys: dict[str, list[str]] = {}
    for name, column in rows:
        keys.setdefault(name, []).append(column)
    return keys


async def _plain_indexes(session: AsyncSession) -> dict[str, str]:
    """Indexes that back no constraint, by name, with the statement that creates each."""
    rows = await session.execute(
        text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = to_regclass(:t)"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        ),
        {"t": TABLE},
    )
    return dict(rows.all())


async def _foreign_keys(session: AsyncSession) -> list[str]:
    rows = await session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = to_regclass(:t) AND contype = 'f' ORDER BY conname"
        ),
        {"t": TABLE},
    )
    return [f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {body}' for name, body in rows]
