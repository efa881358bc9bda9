"""A 500 is one failed request, not a failed connection: after the server answers a fault with
its error object, the same keep-alive connection serves the next request (a client pool or a
proxy in front reuses it). The fault is real: a trigger that makes the database refuse the
route's insert, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import http.client
import json
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.servers import free_port, qm_server
from tests.e2e.test_cli import env, run_qm

__all__ = ["env"]
SQLITE_FAULT = [
    "CREATE TRIGGER qm_fault BEFORE INSERT ON token_requests "
    "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
]
POSTGRESQL_FAULT = [
    "CREATE FUNCTION qm_fault() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
    "CREATE TRIGGER qm_fault BEFORE INSERT ON token_requests "
    "FOR EACH ROW EXECUTE FUNCTION qm_fault()",
]


async def _inject_fault(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            statements = SQLITE_FAULT if engine.dialect.name == "sqlite" else POSTGRESQL_FAULT
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def _member_key(env: dict[str, str], cwd: Path) -> str:
    logins = json.loads(run_qm(["demo", "--json"], env, cwd).stdout)
    return next(login["api_key"] for login in logins if login["role"] == "member")


def test_after_a_500_the_same_connection_serves_the_next_request(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "QM_DEMO": "1"}
    assert run_qm(["init"], env, tmp_path).returncode == 0
    key = _member_key(env, tmp_path)
    asyncio.run(_inject_fault(env["QM_DATABASE_URL"]))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    ask = json.dumps({"amount": 1000, "reason": "a project"})
    port = free_port()
    with qm_server(env, tmp_path, port) as output:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/api/me/token-requests", body=ask, headers=headers)
        failed = connection.getresponse()
        error = json.loads(failed.read())["error"]
        kept = connection.sock
        connection.request("GET", "/v1/models", headers=headers)
        served = connection.getresponse()
        models = json.loads(served.read())
        reused = connection.sock is kept  # http.client opens a new socket if the old one closed
        connection.close()
    assert failed.status == 500
    assert failed.getheader("connection") != "close"
    assert error == {
        "message": "internal error; the operator's log has the details",
        "type": "api_error",
        "param": None,
        "code": None,
    }
    assert served.status == 200
    assert models["data"]
    assert kept is not None
    assert reused, "the second answer came on the first connection"
    assert "injected fault" in output[0]  # the operator's log has it; the caller did not
