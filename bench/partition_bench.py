"""Usage events partitioned by month, at 10 M events: the metrics bench on the plain table and on
a partitioned copy of it, alternated in one run; how long `qm usage partition` takes to convert
the copy; then a year's months archived from the copy (their partitions dropped), with
`qm ledger check` and what an admin sees (token statistics, the user table sorted by total
usage, the users-with-tokens export) compared before and after.

Usage: .venv/bin/python bench/metrics_data.py          # once: the 10 M-event database
       .venv/bin/python bench/partition_bench.py [--rounds 3] [--runs 15]
Prints JSON lines, then a table of p50s per case (median over rounds); the copy is dropped at
the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import time
from collections import defaultdict
from typing import Any

import asyncpg
from metrics_bench import OPERATOR, cases, fold, timed
from metrics_data import BENCH_DB, ORG_NAME

from quartermaster import bootstrap
from quartermaster.domain.member_table import MemberColumn, MemberQuery
from quartermaster.domain.periods import last_closed_period
from quartermaster.services.context import Context
from quartermaster.services.enterprise import provisioning
from quartermaster.services.ledger import archive, check, partitioning
from quartermaster.services.metrics import exports, member_stats, token_stats
from quartermaster.settings import Settings

COPY_DB = f"{BENCH_DB}_partitioned"


def url_of(admin_dsn: str, name: str) -> str:
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def copy_database(admin_dsn: str) -> dict[str, Any]:
    """A file-level copy of the bench database (CREATE DATABASE … TEMPLATE), timed."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {COPY_DB} WITH (FORCE)")
        start = time.perf_counter()
        await admin.execute(f"CREATE DATABASE {COPY_DB} TEMPLATE {BENCH_DB}")
        return {"copy": COPY_DB, "seconds": round(time.perf_counter() - start, 1)}
    finally:
        await admin.close()


async def drop_copy(admin_dsn: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {COPY_DB} WITH (FORCE)")
    finally:
        await admin.close()


async def convert(url: str) -> dict[str, Any]:
    async with bootstrap.opened(Settings(database_url=url)) as ctx:
        start = time.perf_counter()
        done = await partitioning.partition(ctx, OPERATOR)
        seconds = time.perf_counter() - start
    months = [p for p in done.partitions if p.first]
    return {"convert": "qm usage partition", "seconds": round(seconds, 1), "months": len(months)}


async def measure(url: str, table: str, round_: int, runs: int) -> list[dict[str, Any]]:
    """Every metrics case on one database, after the fold a running server would have made."""
    async with bootstrap.opened(Settings(database_url=url, db_pool_size=2)) as ctx:
        org_id, member_id = await org_and_member(ctx)
        if round_ == 0:
            print(json.dumps({"table": table, **await fold(ctx, ctx.uow.engine)}), flush=True)
        results = []
        for name, call in cases(ctx, org_id, member_id).items():
            result = {"round": round_, "table": table, **await timed(name, runs, call)}
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


async def org_and_member(ctx: Context) -> tuple[int, int]:
    org_id = await provisioning.find_org(ctx, OPERATOR, ORG_NAME)
    table = await member_stats.member_stats(ctx, OPERATOR, org_id, MemberQuery(limit=1))
    return org_id, table["members"][0]["user_id"]


async def admin_views(ctx: Context, org_id: int) -> dict[str, Any]:
    """What an admin sees of every month: statistics, the top of the user table by total
    usage, and a digest of the users-with-tokens export."""
    stats = await token_stats.org_statistics(ctx, OPERATOR, org_id)
    del stats["projection"]  # a forecast from the current month's pace, which moves with time
    query = MemberQuery(sort=MemberColumn.TOTAL, descending=True, limit=50)
    page = await member_stats.member_stats(ctx, OPERATOR, org_id, query)
    digest = hashlib.sha256()
    async for chunk in exports.csv_chunks(await exports.users_with_tokens(ctx, OPERATOR, org_id)):
        digest.update(chunk.encode())
    top = [(m["user_id"], m["total_tokens"]) for m in page["members"]]
    return {"stats": stats, "top": top, "export": digest.hexdigest()}


async def timed_check(ctx: Context) -> tuple[int, float]:
    start = time.perf_counter()
    differences = await check.check(ctx)
    return len(differences), round(time.perf_counter() - start, 1)


async def archive_a_year(url: str) -> dict[str, Any]:
    """Archive the closed months of the earliest year in the data, comparing what an admin sees
    and the ledger check before and after (and after the next fold)."""
    async with bootstrap.opened(Settings(database_url=url)) as ctx:
        org_id, _ = await org_and_member(ctx)
        async with ctx.uow.engine.connect() as connection:
            query = "SELECT min(period) FROM usage_events"
            earliest = (await connection.exec_driver_sql(query)).scalar_one()
        through = min(f"{earliest[:4]}-12", last_closed_period(ctx.clock.now()))
        before = await admin_views(ctx, org_id)
        differences_before, check_before_s = await timed_check(ctx)
        start = time.perf_counter()
        done = await archive.archive(ctx, OPERATOR, through)
        archive_s = round(time.perf_counter() - start, 1)
        after = await admin_views(ctx, org_id)
        differences_after, check_after_s = await timed_check(ctx)
        refold = await fold(ctx, ctx.uow.engine)
        refolded = await admin_views(ctx, org_id)
    return {
        "archive_through": through,
        "events": done.events,
        "tokens": done.tokens,
        "partitions_dropped": len(done.partitions_dropped),
        "archive_s": archive_s,
        "check_before": {"differences": differences_before, "seconds": check_before_s},
        "check_after": {"differences": differences_after, "seconds": check_after_s},
        "views_equal_after_archive": after == before,
        "views_equal_after_refold": refolded == before,
        "refold_s": refold["seconds"],
    }


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per case, the median over rounds of each table's p50."""
    p50s: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        p50s[result["name"]][result["table"]].append(result["p50_ms"])
    return [
        {
            "name": name,
            **{f"{table}_p50_ms": statistics.median(values) for table, values in tables.items()},
            **{f"{table}_p50s": values for table, values in tables.items()},
        }
        for name, tables in p50s.items()
    ]


async def main(args: argparse.Namespace) -> None:
    plain, copy = url_of(args.admin_dsn, BENCH_DB), url_of(args.admin_dsn, COPY_DB)
    print(json.dumps(await copy_database(args.admin_dsn)), flush=True)
    try:
        print(json.dumps(await convert(copy)), flush=True)
        results = []
        for round_ in range(args.rounds):
            for table, url in (("plain", plain), ("partitioned", copy)):
                results += await measure(url, table, round_, args.runs)
        for line in summary(results):
            print(json.dumps(line), flush=True)
        print(json.dumps(await archive_a_year(copy)), flush=True)
    finally:
        if not args.keep:
            await drop_copy(args.admin_dsn)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the partitioned copy")
    asyncio.run(main(parser.parse_args()))
