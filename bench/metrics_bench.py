"""Latency of every metrics service on the big org bench/metrics_data.py makes, and export
throughput.

Usage: .venv/bin/python bench/metrics_data.py            # once: 10,000 members, 10 M events
       .venv/bin/python bench/metrics_bench.py [--runs 30] [--export-activity-rows 200000]
Folds the closed months first (timed), as a running server does, then vacuums the fold as
autovacuum would. Prints one JSON line per measurement: {"name", "p50_ms", "p95_ms", "runs"}
for services, and {"export", "rows", "seconds", "rows_per_s", "mb_per_s"} for exports. Calls go
through the services as the API's handlers call them (authorization included), as the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from metrics_data import BENCH_DB, ORG_NAME
from sqlalchemy.ext.asyncio import AsyncEngine

from quartermaster import bootstrap
from quartermaster.domain.activity import ActivityQuery
from quartermaster.domain.member_table import MemberColumn, MemberQuery, MemberStatus
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.enterprise import provisioning
from quartermaster.services.ledger import fold as usage_fold
from quartermaster.services.metrics import activity, exports, member_stats, token_stats
from quartermaster.settings import Settings

OPERATOR = Principal.command_line()


async def timed(name: str, runs: int, call: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    await call()  # warm the caches and the connection pool
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return {
        "name": name,
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(p95, 1),
        "runs": runs,
    }


def cases(
    ctx: Context, org_id: int, member_id: int, reader: Principal = OPERATOR
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Every metrics page, read by `reader` (an org admin's check reads more than an
    operator's: bench/replica_bench.py weighs what the check leaves on the primary)."""

    def table(**kw: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: member_stats.member_stats(ctx, reader, org_id, MemberQuery(**kw))

    def log(**kw: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: activity.page(ctx, reader, org_id, ActivityQuery(**kw))

    member = Principal(member_id, False, False, "api_key")
    return {
        "members: first page by id": table(),
        "members: page 100 by email": table(sort=MemberColumn.EMAIL, offset=5000),
        "members: by total usage, desc": table(sort=MemberColumn.TOTAL, descending=True),
        "members: by inference this month": table(sort=MemberColumn.INFERENCE_THIS_MONTH),
        "members: by inference last month": table(sort=MemberColumn.INFERENCE_PREVIOUS_MONTH),
        "members: by total usage, asc": table(sort=MemberColumn.TOTAL),
        "members: by inference last month, desc": table(
            sort=MemberColumn.INFERENCE_PREVIOUS_MONTH, descending=True
        ),
        "members: by training this month, desc": table(
            sort=MemberColumn.TRAINING_THIS_MONTH, descending=True
        ),
        "members: by total usage, desc, email contains '99', paid": table(
            sort=MemberColumn.TOTAL, descending=True, email="99", status=MemberStatus.PAID
        ),
        "members: email contains '99', banned": table(email="99", status=MemberStatus.BANNED),
        "token statistics (months, years, models, projection)": lambda: token_stats.org_statistics(
            ctx, reader, org_id
        ),
        "my usage (member's window)": lambda: token_stats.my_usage(ctx, member),
        "activity: newest page": log(),
        "activity: one member": log(user_id=member_id),
        "activity: usage.training only": log(action="usage.training"),
        "activity: sign-ins only": log(action="signin"),
    }


async def export_rate(name: str, export: exports.Export, max_rows: int) -> dict[str, Any]:
    rows, size, start = 0, 0, time.perf_counter()
    async for chunk in exports.csv_chunks(export):
        rows += chunk.count("\r\n")
        size += len(chunk.encode())
        if rows >= max_rows:
            break
    seconds = time.perf_counter() - start
    return {
        "export": name,
        "rows": rows - 1,
        "seconds": round(seconds, 2),
        "rows_per_s": round((rows - 1) / seconds),
        "mb_per_s": round(size / seconds / 1e6, 2),
    }


async def fold(ctx: Context, engine: AsyncEngine) -> dict[str, Any]:
    """Fold the closed months first, as every server process does a few minutes after start."""
    start = time.perf_counter()
    async with ctx.uow.begin() as tx:  # from scratch, so every run times a whole fold
        await usage_fold.forget(tx.session)
        await tx.commit()
    through = await usage_fold.fold(ctx)
    seconds = time.perf_counter() - start
    await vacuum_folds(engine)
    return {"fold": "closed months", "through": through, "seconds": round(seconds, 2)}


async def vacuum_folds(engine: AsyncEngine) -> None:
    """What autovacuum does a minute after a fold: without it (the development server runs with
    autovacuum off) every run's rewrite of the fold leaves 10,000 dead rows that the user table
    sorted by total usage then scans, and the planner's estimate of its size goes stale."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql(
            "VACUUM ANALYZE usage_folded_users, usage_folded_orgs, usage_folds"
        )


async def main(args: argparse.Namespace) -> None:
    async with bootstrap.opened(Settings(database_url=args.url, db_pool_size=2)) as ctx:
        org_id = await provisioning.find_org(ctx, OPERATOR, ORG_NAME)
        table = await member_stats.member_stats(ctx, OPERATOR, org_id, MemberQuery(limit=1))
        member_id = table["members"][0]["user_id"]
        print(json.dumps(await fold(ctx, ctx.uow.engine)), flush=True)
        for name, call in cases(ctx, org_id, member_id).items():
            print(json.dumps(await timed(name, args.runs, call)), flush=True)
        for name, make in (
            ("users-tokens", exports.users_with_tokens(ctx, OPERATOR, org_id)),
            ("token-usage", exports.token_usage(ctx, OPERATOR, org_id)),
            ("activity", exports.activity_log(ctx, OPERATOR, org_id, None, None)),
        ):
            print(json.dumps(await export_rate(name, await make, args.export_activity_rows)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--export-activity-rows", type=int, default=200_000)
    parser.add_argument("--url", default=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{BENCH_DB}")
    asyncio.run(main(parser.parse_args()))
