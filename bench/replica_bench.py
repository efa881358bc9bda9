"""What `QM_DATABASE_REPLICA_URL` takes off the primary: the metrics pages read by an org admin,
once with every read on the primary and once with the reads on a hot standby, each round's
CPU seconds counted on the primary's and on the standby's server processes.

Usage: make bench-replica, or
       (cd bench && PYTHONPATH=.. ../.venv/bin/python replica_bench.py [--members 1000]
        [--events 2000000] [--runs 20] [--rounds 3])
(PYTHONPATH for `tests`: the clusters are the e2e tests' own.)
Builds a throw-away primary and an asynchronous hot standby (tests/e2e/postgres_cluster.py, on
ports of their own; the server on 5432 is not touched), fills the primary with
bench/metrics_data.py's org, folds the closed months and vacuums as a running server and
autovacuum would, waits for the standby to replay it all, then times bench/metrics_bench.py's
admin pages (the user table, token statistics, the activity log) and the users-with-tokens
export, `--runs` times each after one warm-up call, in `--rounds` pairs of rounds: all on the
primary, then with the replica. A server's CPU is the utime + stime of its postmaster and of every
child it has (backends, walsender, startup, ...), plus what the postmaster's exited children
left in its cutime + cstime. Progress goes to stderr; one JSON object to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import redirect_stdout
from typing import Any

import metrics_data
import processes
from metrics_bench import cases, fold, timed
from partition_bench import org_and_member
from sqlalchemy import text
from tests.e2e.postgres_cluster import PostgresCluster, Replication, primary_with_standby

from quartermaster import bootstrap
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.metrics import exports
from quartermaster.settings import Settings

MEMBERS_OWN_PAGE = "my usage (member's window)"
"""Left out: a member's own window (`token_stats.my_usage`) reads the primary with or without a
replica, so it is no part of what the setting moves."""


def cluster_cpu_s(cluster: PostgresCluster) -> float:
    """CPU seconds the cluster's processes have used so far: the postmaster (the first line of
    postmaster.pid) and its live children, and what its reaped children left behind."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    live = processes.cpu_by_pid(processes.tree(postmaster))
    return sum(live.values()) + processes.reaped_cpu(postmaster)


class CpuMeter:
    """CPU seconds used by the primary, the standby and this process between two readings."""

    def __init__(self, primary: PostgresCluster, standby: PostgresCluster) -> None:
        self.clusters = {"primary": primary, "standby": standby}

    def read(self) -> dict[str, float]:
        used = {name: cluster_cpu_s(cluster) for name, cluster in self.clusters.items()}
        return {**used, "client": time.process_time(), "wall": time.monotonic()}

    def since(self, before: dict[str, float]) -> dict[str, float]:
        now = self.read()
        return {name: round(now[name] - before[name], 2) for name in before}


def fill(primary: PostgresCluster, members: int, events: int) -> dict[str, Any]:
    """bench/metrics_data.py's org in the primary's bench database; its progress to stderr."""
    arguments = argparse.Namespace(
        members=members, events=events, budget_s=600.0, postgres=primary.dsn
    )
    with redirect_stdout(sys.stderr):
        metrics_data.recreate(primary.dsn)
        return asyncio.run(metrics_data.main(arguments))


async def settle(ctx: Context) -> None:
    """Leave nothing for the background to do during the rounds: the fold a server makes, a
    vacuum of everything loaded (autovacuum would otherwise pick the tables up mid-round, and
    the standby gets the visibility map the index-only scans need), then the standby replayed."""
    print(json.dumps(await fold(ctx, ctx.uow.engine)), file=sys.stderr, flush=True)
    async with ctx.uow.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("VACUUM ANALYZE")
        written = (await autocommit.exec_driver_sql("SELECT pg_current_wal_lsn()::text")).scalar()
    assert ctx.reports is not None, "settle is given the context with the replica"
    caught_up = f"SELECT pg_last_wal_replay_lsn() >= '{written}'::pg_lsn"
    deadline = time.monotonic() + 300
    while True:
        async with ctx.reports.engine.connect() as connection:
            if (await connection.exec_driver_sql(caught_up)).scalar():
                return
        assert time.monotonic() < deadline, "the standby did not catch up within 300 s"
        await asyncio.sleep(0.5)


async def an_admin(ctx: Context, org_id: int) -> Principal:
    """One of the org's admins, signed in with MFA: the dashboard's reader."""
    query = text(
        "SELECT user_id FROM memberships WHERE org_id = :org_id AND role = 'admin'"
        " AND NOT banned ORDER BY user_id LIMIT 1"
    )
    async with ctx.uow.engine.connect() as connection:
        user_id = (await connection.execute(query, {"org_id": org_id})).scalar_one()
    return Principal(user_id, is_operator=False, mfa_verified=True, via="session")


def pages(
    ctx: Context, org_id: int, member_id: int, admin: Principal
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """metrics_bench's admin pages, and the users-with-tokens export read to its end."""

    async def users_with_tokens() -> int:
        export = await exports.users_with_tokens(ctx, admin, org_id)
        return sum([len(chunk) async for chunk in exports.csv_chunks(export)])

    chosen = cases(ctx, org_id, member_id, admin)
    del chosen[MEMBERS_OWN_PAGE]
    return {**chosen, "export: users with tokens": users_with_tokens}


async def one_round(
    reads: str, ctx: Context, meter: CpuMeter, ids: tuple[int, int, Principal], runs: int
) -> dict[str, Any]:
    before = meter.read()
    p50s = {}
    for name, call in pages(ctx, *ids).items():
        p50s[name] = (await timed(name, runs, call))["p50_ms"]
    used = meter.since(before)
    calls = len(p50s) * (runs + 1)
    return {
        "reads": reads,
        "calls": calls,
        "wall_s": used.pop("wall"),
        "cpu_s": used,
        "primary_cpu_ms_per_call": round(used["primary"] * 1000 / calls, 2),
        "p50_ms": p50s,
    }


async def measure(
    primary: PostgresCluster, standby: PostgresCluster, runs: int, rounds: int
) -> dict[str, Any]:
    url = metrics_data.bench_url(primary.dsn).replace("postgresql://", "postgresql+asyncpg://")
    replica_url = url.replace(f":{primary.port}/", f":{standby.port}/")
    plain = bootstrap.build_context(Settings(database_url=url, db_pool_size=2))
    split = bootstrap.build_context(
        Settings(database_url=url, database_replica_url=replica_url, db_pool_size=2)
    )
    meter = CpuMeter(primary, standby)
    try:
        await settle(split)
        org_id, member_id = await org_and_member(plain)
        ids = (org_id, member_id, await an_admin(plain, org_id))
        before = meter.read()
        await asyncio.sleep(5)
        idle = meter.since(before)
        results = []
        for _ in range(rounds):
            for reads, ctx in (("primary", plain), ("replica", split)):
                result = await one_round(reads, ctx, meter, ids, runs)
                print(json.dumps(result), file=sys.stderr, flush=True)
                results.append(result)
    finally:
        await bootstrap.close(plain)
        await bootstrap.close(split)
    return {"idle_5s_cpu_s": idle, "rounds": results}


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per way of reading, the median over rounds of each server's CPU seconds."""
    out: dict[str, Any] = {}
    for reads in ("primary", "replica"):
        mine = [r for r in rounds if r["reads"] == reads]
        out[reads] = {
            server: statistics.median(r["cpu_s"][server] for r in mine)
            for server in ("primary", "standby", "client")
        }
    return out


def main(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    with primary_with_standby(Replication(synchronous=False)) as (primary, standby):
        filled = fill(primary, args.members, args.events)
        measured = asyncio.run(measure(primary, standby, args.runs, args.rounds))
    return {
        "members": filled["members"],
        "events": filled["events"],
        "fill_s": filled["total_s"],
        "runs": args.runs,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_s_median": summary(measured["rounds"]),
        **measured,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    print(json.dumps(main(parser.parse_args())))
