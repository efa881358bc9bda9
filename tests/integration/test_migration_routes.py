"""Migration 0013 on a ledger with usage, both ways: down, the roll-ups of one key merge again
whatever their routes; up, inference is the chat's route and training is read from the request
id, the roll-ups and the fold follow, and the ledger check passes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from quartermaster.domain.routes import Route
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import check, fold
from quartermaster.store.migrate import alembic_config, head_revision
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member

CALLS = [
    ("chatcmpl-1", CHAT, Route.CHAT),
    ("resp-1", CHAT, Route.RESPONSES),
    ("embd-1", EMBEDDING, Route.EMBEDDINGS),
    ("ingest-1", EMBEDDING, Route.DATASETS),
    ("ingest-2", EMBEDDING, Route.DATASETS),
    ("query-1", EMBEDDING, Route.SEARCH),
]


async def _migrate(database_url: str, step: str, revision: str) -> None:
    migrate = command.downgrade if step == "down" else command.upgrade
    await asyncio.to_thread(migrate, alembic_config(database_url), revision)


async def _rows(ctx: Context, sql: str) -> list[tuple[object, ...]]:
    async with ctx.uow.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


async def test_routes_migrate_down_and_up_on_a_ledger_with_usage(
    ctx: Context, clock: FixedClock, database_url: str
) -> None:
    clock.set(datetime(2026, 10, 20, tzinfo=UTC))
    member = await add_member(ctx, inference_cap=10_000, training_cap=10_000)
    for request_id, model, route in CALLS:
        output = 20 if model == CHAT else 0
        await ledger.reserve(ctx, member.user_id, model, 10, output, request_id, route=route)
        await ledger.settle(ctx, request_id, 10, output // 2)
    clock.set(datetime(2026, 12, 10, tzinfo=UTC))
    assert await fold.fold(ctx) == "2026-11"

    await _migrate(database_url, "down", "0012")
    async with ctx.uow.engine.connect() as connection:
        for table in ("holds", "usage_events", "usage_monthly", "usage_folded_orgs"):
            assert "route" not in await connection.run_sync(_columns, table)
    merged = await _rows(
        ctx, "SELECT rollup_key, tokens, requests FROM usage_monthly ORDER BY kind"
    )
    user, model_ids = member.user_id, dict(await _rows(ctx, "SELECT name, id FROM models"))
    assert merged == [
        (f"{member.org_id}:{user}:2026-10:inference:{model_ids[CHAT]}", 40, 2),
        (f"{member.org_id}:{user}:2026-10:training:{model_ids[EMBEDDING]}", 20, 4),
    ]
    assert await _rows(ctx, "SELECT through_period FROM usage_folds") == [(None,)]

    await _migrate(database_url, "up", "head")
    assert head_revision() >= "0013"  # head: this revision or a later one
    routes = await _rows(
        ctx,
        "SELECT e.request_id, e.route, h.route FROM usage_events e JOIN holds h"
        " ON h.request_id = e.request_id ORDER BY e.request_id",
    )
    assert routes == [
        ("chatcmpl-1", "chat.completions", "chat.completions"),
        ("embd-1", "embeddings", "embeddings"),
        ("ingest-1", "datasets", "datasets"),
        ("ingest-2", "datasets", "datasets"),
        ("query-1", "search", "search"),
        ("resp-1", "chat.completions", "chat.completions"),  # its route was not kept before
    ]
    rollups = await _rows(
        ctx, "SELECT route, tokens, requests, rollup_key FROM usage_monthly ORDER BY route"
    )
    assert [row[:3] for row in rollups] == [
        ("chat.completions", 40, 2),
        ("datasets", 10, 2),
        ("embeddings", 5, 1),
        ("search", 5, 1),
    ]
    assert all(str(row[3]).endswith(f":{row[0]}") for row in rollups)
    details = "SELECT DISTINCT cached_tokens, reasoning_tokens FROM usage_events"
    assert await _rows(ctx, details) == [(0, 0)]
    assert await check.check(ctx) == []
    assert await fold.fold(ctx) == "2026-11"
    assert await check.check(ctx) == []
