"""Quartermaster prepared for benchmarks, the soak and the reliability tests: a throw-away
PostgreSQL database, `qm init`, an upstreams file naming the fake upstream, a chat and an
embedding model served by it, and organizations whose members have the caps asked for (by
default one no run can reach), provisioned through the services an operator uses, with API keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pyotp

from quartermaster import bootstrap
from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.principal import Principal
from quartermaster.domain.rate_limits import Limits
from quartermaster.domain.types import ModelKind, TokenKind
from quartermaster.services import catalog
from quartermaster.services.catalog import entries
from quartermaster.services.context import Context
from quartermaster.services.enterprise import allocations, provisioning, rate_limit_settings
from quartermaster.services.identity import api_keys, mfa
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import RecordedPayment
from quartermaster.settings import Settings

MODEL = "bench-fake"
UPSTREAM = "fake"
HUGE_CAP = 10**12
EMBED_MODEL = "bench-fake-embed"
MIN_ALLOCATION = 1_000
"""The org's minimum inference allocation: low, so that a member's cap can be small."""
QM = [sys.executable, "-m", "quartermaster"]
OPERATOR = Principal.command_line()
NO_LIMITS = Limits()
T = TypeVar("T")


@dataclass(frozen=True)
class Database:
    admin_dsn: str
    name: str

    @property
    def dsn(self) -> str:
        """asyncpg's DSN for this database."""
        return f"{self.admin_dsn.rsplit('/', 1)[0]}/{self.name}"

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


def create_database(admin_dsn: str, name: str | None = None) -> Database:
    database = Database(admin_dsn, name or f"qm_bench_{os.getpid()}")
    asyncio.run(_admin(admin_dsn, f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)"))
    asyncio.run(_admin(admin_dsn, f"CREATE DATABASE {database.name}"))
    return database


def drop_database(database: Database) -> None:
    asyncio.run(_admin(database.admin_dsn, f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)"))


def environment(
    database: Database, upstream_url: str, workdir: Path, *, read_timeout_s: float = 120.0
) -> dict[str, str]:
    """`qm`'s environment: the bench database, the fake upstream, no access log, no qm.toml."""
    upstreams = workdir / "upstreams.toml"
    upstreams.write_text(
        f'[upstreams.{UPSTREAM}]\nbase_url = "{upstream_url}"\nconnect_retries = 1\n'
        f"read_timeout_s = {read_timeout_s}\nconnect_timeout_s = {min(read_timeout_s, 5.0)}\n"
    )
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("QM_")},
        "QM_DATABASE_URL": database.url,
        "QM_SECRET_KEY": secrets.token_urlsafe(48),
        "QM_UPSTREAMS_FILE": str(upstreams),
        "QM_DATA_DIR": str(workdir / "data"),
        "QM_CONFIG": str(workdir / "absent.toml"),
        "QM_LOG_LEVEL": "warning",
    }


def initialize(env: dict[str, str], workdir: Path, limits: Limits = NO_LIMITS) -> str:
    """`qm init`, then the models and the member; returns the member's API key."""
    migrate(env, workdir)
    spec = TeamSpec("Bench Org", limits=limits)
    team = asyncio.run(with_context(env["QM_DATABASE_URL"], provision_team, spec))
    return team.member_keys[0]


INDIVIDUAL_REFILL = 10**11
"""`initialize_individual`: a month's refill no benchmark reaches (a pure bookkeeping entry)."""


def initialize_individual(env: dict[str, str], workdir: Path) -> str:
    """`qm init`, the models, and a user outside any org on the default (free) plan with a
    refill for the month; returns their API key."""
    migrate(env, workdir)
    return asyncio.run(with_context(env["QM_DATABASE_URL"], _individual))


async def _individual(ctx: Context) -> str:
    user_id = await _person(ctx, f"individual-{secrets.token_hex(4)}@quartermaster.example")
    refill = RecordedPayment(f"bench-{secrets.token_hex(4)}")
    await subscriptions.refill(
        ctx, OPERATOR, TokenKind.INFERENCE, INDIVIDUAL_REFILL, refill, user_id=user_id
    )
    return await _key(ctx, user_id)


def migrate(env: dict[str, str], workdir: Path) -> None:
    """`qm init` as an operator runs it, and the fake upstream's two models in the catalog."""
    subprocess.run([*QM, "init"], env=env, cwd=workdir, check=True, capture_output=True)  # noqa: S603
    asyncio.run(with_context(env["QM_DATABASE_URL"], _seed_models))


async def _seed_models(ctx: Context) -> None:
    chat = catalog.ModelSpec(MODEL, ModelKind.CHAT, UPSTREAM, "gpt-4o-mini", Decimal(1), Decimal(1))
    embed = catalog.ModelSpec(
        EMBED_MODEL,
        ModelKind.EMBEDDING,
        UPSTREAM,
        "text-embedding-3-small",
        training_rate=Decimal(1),
        context_window=512,
    )
    await entries.seed(ctx, [chat, embed])


async def with_context(url: str, work: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run one service call on a short-lived engine."""
    async with bootstrap.opened(Settings(database_url=url, db_pool_size=1)) as ctx:
        return await work(ctx, *args)


@dataclass(frozen=True)
class TeamSpec:
    """An org of `members` members with these caps, and one admin (with MFA when asked)."""

    name: str
    members: int = 1
    inference_cap: int = HUGE_CAP // 2
    training_cap: int = 0
    admin_mfa: bool = False
    limits: Limits = NO_LIMITS
    """The org's per-member rate limits."""


@dataclass(frozen=True)
class Team:
    org_id: int
    admin_id: int
    admin_key: str
    member_ids: tuple[int, ...]
    member_keys: tuple[str, ...]


async def provision_team(ctx: Context, spec: TeamSpec) -> Team:
    """Provisioned through the services an operator uses; every member gets an API key."""
    tag = secrets.token_hex(4)
    admin = f"admin-{tag}@quartermaster.example"
    emails = [f"member-{tag}-{n}@quartermaster.example" for n in range(spec.members)]
    ids = {e: await _person(ctx, e) for e in (admin, *emails)}
    inference = _bundles(spec.inference_cap * spec.members + MIN_ALLOCATION, 2_000_000)
    training = _bundles(spec.training_cap * spec.members, 1_000_000)
    order = Provisioning(
        f"{spec.name} {tag}",
        [admin, *emails],
        [admin],
        inference_tokens=inference,
        training_tokens=training,
        billing_address="1 Bench Street, Loopback",
        min_inference_allocation=MIN_ALLOCATION,
    )
    org_id = (await provisioning.provision(ctx, OPERATOR, order))["org_id"]
    caps = allocations.CapsEdit(spec.inference_cap, spec.training_cap, version=1)
    for email in emails:
        await allocations.set_allocation(ctx, OPERATOR, org_id, ids[email], caps)
    if spec.limits.active:
        await rate_limit_settings.set_limits(ctx, OPERATOR, org_id, spec.limits)
    if spec.admin_mfa:
        await _enrol_mfa(ctx, ids[admin])
    admin_key = await _key(ctx, ids[admin], mfa=spec.admin_mfa)
    keys = tuple([await _key(ctx, ids[email]) for email in emails])
    return Team(org_id, ids[admin], admin_key, tuple(ids[e] for e in emails), keys)


def _bundles(tokens: int, bundle: int) -> int:
    return -(-tokens // bundle) * bundle


async def _person(ctx: Context, email: str) -> int:
    return await register(ctx, Registration(email, secrets.token_urlsafe(16), "", True))


async def _enrol_mfa(ctx: Context, user_id: int) -> None:
    person = Principal(user_id, is_operator=False, mfa_verified=False, via="session")
    enrolment = await mfa.start_enrolment(ctx, person)
    await mfa.confirm_enrolment(ctx, person, pyotp.TOTP(enrolment.secret).now())


async def _key(ctx: Context, user_id: int, *, mfa: bool = False) -> str:
    async with ctx.uow.begin() as tx:
        key = await api_keys.issue(tx.session, user_id, "bench", ctx.clock.now(), None, mfa)
        await tx.commit()
    return key.secret


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


def ledger_check(env: dict[str, str], workdir: Path, timeout_s: float = 300) -> dict[str, Any]:
    """`qm ledger check --json` as an operator runs it; exit 1 (differences) still reports."""
    result = subprocess.run(  # noqa: S603 - our own CLI
        [*QM, "ledger", "check", "--json"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"qm ledger check failed: {result.stderr.strip()}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report
