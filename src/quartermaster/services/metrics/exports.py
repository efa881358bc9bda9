"""CSV exports for admins, streamed: the token usage by month, the users, the users with their
caps and usage, and the activity log for a date range.

Each export checks the caller and names the file first (so a refusal is an ordinary error, never
a half-written file), then yields its rows in batches, each batch read in a short transaction of
its own: memory stays flat and no transaction stays open for the length of a download.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from quartermaster.domain.activity import ActivityQuery, parse_moment
from quartermaster.domain.member_table import MAX_PAGE, MemberColumn, MemberQuery
from quartermaster.domain.periods import zone
from quartermaster.domain.principal import Principal
from quartermaster.domain.spreadsheet import BYTE_ORDER_MARK, Cell, csv_text, export_filename
from quartermaster.services.context import Context
from quartermaster.services.enterprise.org_pool import get_org
from quartermaster.services.identity import authz
from quartermaster.services.metrics import activity, member_stats, token_stats

BATCH = 1_000
Rows = AsyncIterator[list[list[Cell]]]
USER_COLUMNS = ["user_id", "email", "name", "role", "status", "paid", "banned"]
USER_COLUMNS += ["mfa_enabled", "cac_linked", "joined_at"]
TOKEN_COLUMNS = ["max_inference_tokens", "max_training_tokens", "total_tokens"]
TOKEN_COLUMNS += ["inference_this_month", "inference_previous_month", "training_this_month"]
ACTIVITY_COLUMNS = ["at", "action", "user_id", "email", "source", "id", "details"]


@dataclass(frozen=True)
class Export:
    filename: str
    header: list[str]
    rows: Rows


async def csv_chunks(export: Export) -> AsyncIterator[str]:
    """The byte-order mark and the header line, then one chunk of CSV text per batch of rows."""
    yield BYTE_ORDER_MARK + csv_text([export.header])
    async for batch in export.rows:
        yield csv_text(batch)


async def _start(ctx: Context, principal: Principal, org_id: int, what: str) -> tuple[str, str]:
    """Check the caller (on the primary); the file name (org and today's date in its zone) and
    the org's zone. The rows are read later, from the replica if there is one."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        org = await get_org(tx.session, org_id)
    today = ctx.clock.now().astimezone(zone(org.timezone)).date()
    return export_filename(org.name, what, today), org.timezone


async def token_usage(ctx: Context, principal: Principal, org_id: int) -> Export:
    """period, inference, embedding (training) and total tokens, for every month, oldest first."""
    filename, tz = await _start(ctx, principal, org_id, "token-usage")

    async def rows() -> Rows:
        async with ctx.report_reader.begin(write=False) as tx:
            months = await token_stats.monthly_rows(tx.session, org_id, ctx.clock.now(), tz)
        for start in range(0, len(months), BATCH):
            yield [
                [m.period, m.inference_tokens, m.training_tokens, m.total_tokens]
                for m in months[start : start + BATCH]
            ]

    header = ["period", "inference_tokens", "embedding_tokens", "total_tokens"]
    return Export(filename, header, rows())


def _members(ctx: Context, org_id: int, columns: list[str]) -> Rows:
    """Every active member in id order, `columns` of the user table, by keyset batches."""

    async def rows() -> Rows:
        after: int | None = 0
        while after is not None:
            query = MemberQuery(MemberColumn.USER_ID, limit=MAX_PAGE, after_user_id=after)
            async with ctx.report_reader.begin(write=False) as tx:
                periods = await member_stats.periods_of(tx.session, org_id, ctx)
                found = await member_stats.read_page(tx.session, org_id, query, periods)
            if found:
                yield [[row[column] for column in columns] for row in found]
            after = found[-1]["user_id"] if len(found) == MAX_PAGE else None

    return rows()


async def users(ctx: Context, principal: Principal, org_id: int) -> Export:
    filename, _ = await _start(ctx, principal, org_id, "users")
    return Export(filename, USER_COLUMNS, _members(ctx, org_id, USER_COLUMNS))


async def users_with_tokens(ctx: Context, principal: Principal, org_id: int) -> Export:
    filename, _ = await _start(ctx, principal, org_id, "users-tokens")
    columns = USER_COLUMNS + TOKEN_COLUMNS
    return Export(filename, columns, _members(ctx, org_id, columns))


def _activity_row(entry: dict[str, Any]) -> list[Cell]:
    details = json.dumps(entry["details"], sort_keys=True, default=str)
    return [entry["at"], entry["action"], entry["user_id"], entry["email"], entry["source"],
            entry["id"], details]  # fmt: skip


async def activity_log(
    ctx: Context,
    principal: Principal,
    org_id: int,
    since_text: str | None,
    until_text: str | None,
) -> Export:
    """The activity log from `since_text` to `until_text` (dates in the org's time zone, or
    datetimes with an offset), newest first."""
    filename, tz = await _start(ctx, principal, org_id, "activity")
    since = parse_moment(since_text, tz, end=False, param="from")
    until = parse_moment(until_text, tz, end=True, param="to")
    first = ActivityQuery(since=since, until=until, limit=BATCH)

    async def rows() -> Rows:
        query: ActivityQuery | None = first
        while query is not None:
            async with ctx.report_reader.begin(write=False) as tx:
                entries, last = await activity.read_page(tx.session, org_id, query)
            yield [_activity_row(entry.as_dict()) for entry in entries]
            query = None if last is None else replace(first, cursor=last)

    return Export(filename, ACTIVITY_COLUMNS, rows())
