"""Reserve+settle pairs per second on SQLite and PostgreSQL, with 1 and N processes.

Usage: .venv/bin/python bench/ledger_bench.py [--seconds 5] [--processes 4]
       [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
Prints one JSON line per run: {"backend", "processes", "pairs", "seconds", "pairs_per_s"}.
Each process spends as a different demo member, as a gateway serving many users would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import select

from quartermaster import bootstrap
from quartermaster.services import demo, ledger
from quartermaster.settings import Settings
from quartermaster.store import migrate
from quartermaster.store.models import Membership

MODEL = "smollm2-135m-instruct"
BENCH_DB = "qm_ledger_bench"


async def prepare(url: str) -> list[int]:
    """Load the demo enterprise (already migrated) and return its members' user ids."""
    async with bootstrap.opened(Settings(database_url=url)) as ctx:
        await demo.load(ctx)
        async with ctx.uow.begin(write=False) as tx:
            return list(await tx.session.scalars(select(Membership.user_id)))


def spend(url: str, user_id: int, seconds: float, start_at: float) -> int:
    """Reserve and settle small calls for `seconds` from `start_at`; returns pairs done."""

    async def main() -> int:
        async with bootstrap.opened(Settings(database_url=url, db_pool_size=1)) as ctx:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            pairs, deadline = 0, start_at + seconds
            while time.time() < deadline:
                request_id = uuid.uuid4().hex
                await ledger.reserve(ctx, user_id, MODEL, 20, 20, request_id)
                await ledger.settle(ctx, request_id, 20, 10)
                pairs += 1
        return pairs

    return asyncio.run(main())


def measure(
    backend: str, url: str, users: list[int], processes: int, seconds: float
) -> dict[str, object]:
    start_at = time.time() + 2.0
    work = [(url, users[i % len(users)], seconds, start_at) for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pairs = sum(pool.starmap(spend, work))
    return {
        "backend": backend,
        "processes": processes,
        "pairs": pairs,
        "seconds": seconds,
        "pairs_per_s": round(pairs / seconds, 1),
    }


async def fresh_postgres(admin_dsn: str) -> str:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await connection.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await connection.close()
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{BENCH_DB}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        backends = [("sqlite", f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")]
        if args.postgres:
            backends.append(("postgresql", asyncio.run(fresh_postgres(args.postgres))))
        for backend, url in backends:
            migrate.upgrade(url)
            users = asyncio.run(prepare(url))
            for processes in sorted({1, args.processes}):
                result = measure(backend, url, users, processes, args.seconds)
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
