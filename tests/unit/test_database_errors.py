"""The database's errors as a caller and an operator see them: a prepared statement lost
between transactions (the database URL reaches PgBouncer in transaction mode without
`QM_DB_PGBOUNCER`; asyncpg says `prepared statement "__asyncpg_stmt_5__" does not exist`, seen
through Debian's PgBouncer 1.18) is a 503 that changed nothing, and the log names the fix."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from quartermaster.http import errors


class DriverError(Exception):
    """Stands in for asyncpg's error, which carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def failing_app(sqlstate: str) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/fails")
    async def fails() -> None:
        try:
            raise DriverError(sqlstate)
        except DriverError as cause:
            raise DBAPIError("select 1", None, cause) from cause

    return app


async def call(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://qm.test") as http:
        return await http.get("/fails")


@pytest.mark.parametrize("sqlstate", ["26000", "42P05"])
async def test_a_lost_prepared_statement_is_503_and_the_log_says_set_qm_db_pgbouncer(
    sqlstate: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = await call(failing_app(sqlstate))
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "database_misconfigured"
    assert "nothing was charged or changed" in answer.json()["error"]["message"]
    assert "set QM_DB_PGBOUNCER=1" in caplog.text


async def test_any_other_database_error_stays_an_internal_error() -> None:
    answer = await call(failing_app("42601"))
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "api_error"
