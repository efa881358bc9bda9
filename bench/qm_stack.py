"""Quartermaster prepared for the gateway benchmark: a throw-away PostgreSQL database, `qm init`,
an upstreams file naming the fake upstream, a catalog model served by it, and one member with a
cap no run can reach, provisioned through the services an operator uses, with an API key.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg

from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import ModelKind
from quartermaster.services import allocations, api_keys, catalog, enterprise
from quartermaster.services.accounts import Registration, register
from quartermaster.services.context import Context
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork

MODEL = "bench-fake"
UPSTREAM = "fake"
HUGE_CAP = 10**12
MEMBER_EMAIL = "bench@quartermaster.example"
ADMIN_EMAIL = "bench-admin@quartermaster.example"  # provisioning needs two people, one admin
QM = [sys.executable, "-m", "quartermaster"]
OPERATOR = Principal.command_line()


@dataclass(frozen=True)
class Database:
    admin_dsn: str
    name: str

    @property
    def url(self) -> str:
        base = self.admin_dsn.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{self.name}"


async def _admin(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database(admin_dsn: str) -> Database:
    database = Database(admin_dsn, f"qm_bench_{os.getpid()}")
    asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)"))
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {database.name}"))
    return database


def drop_database(database: Database) -> None:
    asyncio.run(_admin(database.admin_dsn, f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)"))


def environment(database: Database, upstream_url: str, workdir: Path) -> dict[str, str]:
    """`qm`'s environment: the bench database, the fake upstream, no access log, no qm.toml."""
    upstreams = workdir / "upstreams.toml"
    upstreams.write_text(
        f'[upstreams.{UPSTREAM}]\nbase_url = "{upstream_url}"\nconnect_retries = 1\n'
    )
    return {
        **os.environ,
        "QM_DATABASE_URL": database.url,
        "QM_SECRET_KEY": secrets.token_urlsafe(48),
        "QM_UPSTREAMS_FILE": str(upstreams),
        "QM_DATA_DIR": str(workdir / "data"),
        "QM_CONFIG": str(workdir / "absent.toml"),
        "QM_LOG_LEVEL": "warning",
    }


def initialize(env: dict[str, str], workdir: Path) -> str:
    """`qm init`, then the model and the member; returns the member's API key."""
    subprocess.run([*QM, "init"], env=env, cwd=workdir, check=True, capture_output=True)  # noqa: S603
    return asyncio.run(_provision(env["QM_DATABASE_URL"]))


async def _provision(url: str) -> str:
    engine = create_engine(url, pool_size=1)
    try:
        ctx = Context(uow=UnitOfWork(engine))
        spec = catalog.ModelSpec(
            MODEL, ModelKind.CHAT, UPSTREAM, "gpt-4o-mini", Decimal(1), Decimal(1)
        )
        await catalog.seed(ctx, [spec])
        for email in (ADMIN_EMAIL, MEMBER_EMAIL):
            user_id = await register(ctx, Registration(email, secrets.token_urlsafe(16), "", True))
        people = [ADMIN_EMAIL, MEMBER_EMAIL]
        order = Provisioning("Bench Org", people, [ADMIN_EMAIL], inference_tokens=HUGE_CAP)
        org_id = (await enterprise.provision(ctx, OPERATOR, order))["org_id"]
        caps = allocations.CapsEdit(HUGE_CAP // 2, 0, version=1)  # the admin keeps the minimum
        await allocations.set_allocation(ctx, OPERATOR, org_id, user_id, caps)
        async with ctx.uow.begin() as tx:
            key = await api_keys.issue(tx.session, user_id, "bench", ctx.clock.now())
            await tx.commit()
        return key.secret
    finally:
        await engine.dispose()


def serve_command(port: int, workers: int) -> list[str]:
    return [*QM, "serve", "--port", str(port), "--workers", str(workers)]


async def _backend_pids(database: Database) -> set[int]:
    connection = await asyncpg.connect(database.admin_dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", database.name
        )
    finally:
        await connection.close()
    return {int(row["pid"]) for row in rows}


def backend_pids(database: Database) -> set[int]:
    """PostgreSQL's server processes connected to the bench database (for their CPU time)."""
    return asyncio.run(_backend_pids(database))
