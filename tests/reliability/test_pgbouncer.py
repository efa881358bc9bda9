"""`qm serve` through PgBouncer in transaction mode: without QM_DB_PGBOUNCER the statements
asyncpg prepares and caches on one server connection are unknown on the next, and `qm serve`
(at start) and /healthz say so, naming the setting; with it, /healthz stays ok. (The overspend
and kill -9 tests run through PgBouncer too: test_scale_out.py, test_process_kill.py.)"""

from __future__ import annotations

from pathlib import Path

import httpx
from bench import qm_stack

from tests.reliability import pgbouncer
from tests.reliability.stack import qm_environment, qm_serve

PROBES = 20


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
