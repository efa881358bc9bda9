"""`qm serve` through PgBouncer in transaction mode: without QM_DB_PGBOUNCER the statements
asyncpg prepares and caches on one server connection are unknown on the next, and `qm serve`
(at start) and /healthz say so, naming the setting; with it, /healthz stays ok. Through PgBouncer
in session mode, which serves but pools nothing, `qm serve` says so at start. (The overspend
and kill -9 tests run through PgBouncer too: test_scale_out.py, test_process_kill.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from bench import qm_stack
from sqlalchemy import make_url

from quartermaster import bootstrap
from quartermaster.domain.errors import ServiceUnavailable
from quartermaster.services import health
from quartermaster.settings import Settings
from quartermaster.store.pooler import in_session_mode
from tests.conftest import TEST_SECRET
from tests.reliability import pgbouncer
from tests.reliability.stack import qm_environment, qm_serve

PROBES = 20
SESSION_MODE = "is reached through a pooler in session mode (PgBouncer's pool_mode = session)"


def _log_of(workdir: Path, name: str) -> str:
    (log,) = workdir.glob(f"{name}-*.log")
    return log.read_text()


async def _health(env: dict[str, str], workdir: Path, name: str) -> list[httpx.Response]:
    with qm_serve(env, workdir, name) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            return [await http.get("/healthz") for _ in range(PROBES)]


async def test_healthz_names_the_missing_setting_behind_pgbouncer(
    shared_database: qm_stack.Database, upstream_url: str, workdir: Path, bouncer_port: int
) -> None:
    env = qm_environment(shared_database, upstream_url, workdir)
    without = env | {"QM_DATABASE_URL": pgbouncer.through(env["QM_DATABASE_URL"], bouncer_port)}
    env = without | {"QM_DB_PGBOUNCER": "1"}
    failed = [
        r.json()["error"]
        for r in await _health(without, workdir, "qm-no-setting")
        if r.status_code != 200
    ]
    assert failed, f"none of {PROBES} health checks tripped over a lost prepared statement"
    assert {error["code"] for error in failed} == {"database_pooler"}
    assert "PgBouncer in transaction mode needs QM_DB_PGBOUNCER=1" in failed[0]["message"]
    assert "warning: prepared statements vanish" in _log_of(workdir, "qm-no-setting")
    print(f"without QM_DB_PGBOUNCER: {len(failed)} of {PROBES} health checks 503")
    answers = await _health(env, workdir, "qm-setting")
    assert [r.status_code for r in answers] == [200] * PROBES
    assert SESSION_MODE not in _log_of(workdir, "qm-setting")


async def test_a_pooler_in_session_mode_is_told_from_postgresql_and_transaction_mode(
    shared_database: qm_stack.Database, bouncer_port: int
) -> None:
    url = make_url(shared_database.url)
    with pgbouncer.pgbouncer(mode="session") as session_port:
        modes = {
            "postgresql": await in_session_mode(url),
            "transaction": await in_session_mode(url.set(port=bouncer_port)),
            "session": await in_session_mode(url.set(port=session_port)),
        }
    assert modes == {"postgresql": False, "transaction": False, "session": True}


@asynccontextmanager
async def _pinned(dsn: str, count: int) -> AsyncIterator[None]:
    """`count` clients of a pooler in session mode, each keeping a server connection."""
    others = [await asyncpg.connect(dsn) for _ in range(count)]
    try:
        for other in others:
            await other.fetchval("SELECT 1")
        yield
    finally:
        for other in others:
            await other.close()


async def test_a_pooler_in_session_mode_with_its_pool_full_is_told_too(
    shared_database: qm_stack.Database,
) -> None:
    """Other clients hold all but one server connection: the probe's second client waits while
    its first sits idle, which only session mode does."""
    with pgbouncer.pgbouncer(mode="session") as port:
        dsn = pgbouncer.through(shared_database.dsn, port)
        async with _pinned(dsn, pgbouncer.SERVER_CONNECTIONS - 1):
            assert await in_session_mode(make_url(shared_database.url).set(port=port))


async def test_healthz_names_a_pooler_that_gives_no_server_connection(
    shared_database: qm_stack.Database, tmp_path: Path
) -> None:
    with pgbouncer.pgbouncer(mode="session", wait_s=1) as port:
        dsn = pgbouncer.through(shared_database.dsn, port)
        url = pgbouncer.through(shared_database.url, port)
        settings = Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path)
        async with _pinned(dsn, pgbouncer.SERVER_CONNECTIONS), bootstrap.opened(settings) as ctx:
            with pytest.raises(ServiceUnavailable) as refused:
                await health.check(ctx)
    assert str(refused.value) == (
        f"database unreachable at 127.0.0.1:{port}: the pooler there gave no server "
        "connection within its query_wait_timeout (its pool is full; in session mode each "
        "client connection keeps one)"
    )


async def test_qm_serve_names_a_pooler_in_session_mode_and_serves(
    shared_database: qm_stack.Database, upstream_url: str, workdir: Path
) -> None:
    env = qm_environment(shared_database, upstream_url, workdir)
    with pgbouncer.pgbouncer(mode="session") as port:
        env |= {"QM_DATABASE_URL": pgbouncer.through(env["QM_DATABASE_URL"], port)}
        answers = await _health(env, workdir, "qm-session")
    assert [r.status_code for r in answers] == [200] * PROBES
    log = _log_of(workdir, "qm-session")
    assert f"warning: the database at 127.0.0.1:{port} {SESSION_MODE}" in log, log
    assert "use pool_mode = transaction" in log
