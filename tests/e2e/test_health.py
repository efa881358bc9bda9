import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from quartermaster.app import create_app
from quartermaster.domain.errors import ServiceUnavailable
from quartermaster.services import health
from quartermaster.services.context import Context
from quartermaster.settings import ConfigurationError, Settings
from tests.conftest import TEST_SECRET
from tests.databases import _admin


async def test_healthz_reports_a_reachable_current_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm.test") as http:
            yield http


async def _health_of(settings: Settings) -> httpx.Response:
    async with _served(settings) as http:
        return await http.get("/healthz")


async def test_healthz_is_503_with_the_error_object_when_the_database_is_down(
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    response = await _health_of(settings)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "nobody" not in error["message"]


async def test_healthz_is_503_when_the_schema_was_never_created(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=TEST_SECRET)
    response = await _health_of(settings)
    assert response.status_code == 503
    assert "qm init" in response.json()["error"]["message"]


async def test_unknown_paths_get_the_shared_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/no/such/thing")
    assert response.status_code == 404
    assert set(response.json()["error"]) >= {"message", "type", "param", "code"}
    page = await client.get("/no/such/page")
    assert page.status_code == 404
    assert "There is no such page" in page.text
    assert page.headers["content-type"].startswith("text/html")


def test_the_app_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QM_SECRET_KEY"):
        create_app(Settings(data_dir=tmp_path, secret_key=None, demo=False))


async def test_a_database_host_that_does_not_resolve_is_named(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://qm:secret@db.invalid:5432/qm",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    error = (await _health_of(settings)).json()["error"]
    assert error["message"] == (
        "database unreachable at db.invalid:5432: its host name does not resolve"
    )
    assert "secret" not in error["message"]


async def test_a_port_nobody_listens_on_is_named(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    error = (await _health_of(settings)).json()["error"]
    assert error["message"] == (
        "database unreachable at 127.0.0.1:1: nothing accepts connections there"
    )


async def test_every_listed_host_is_named(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1,127.0.0.1:2/none",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    error = (await _health_of(settings)).json()["error"]
    assert error["message"] == (
        "database unreachable at 127.0.0.1:1,127.0.0.1:2: "
        "no host there both accepts connections and takes writes"
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_read_only_standby_is_named_not_served(ctx: Context, database_url: str) -> None:
    """A URL that reaches a standby (or a database set read-only) would refuse every hold with
    a write error; health says why, and what to change."""
    name = database_url.rsplit("/", 1)[1]
    await _admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    await ctx.uow.engine.dispose()  # settings apply to new connections
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await health.check(ctx)
    finally:
        await _admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await ctx.uow.engine.dispose()
    assert refused.value.code == "database_read_only"
    assert "read-only (a standby)" in refused.value.message
    assert "target_session_attrs=read-write" in refused.value.message
    assert (await health.check(ctx))["database"] == "ok"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_hosts_that_take_no_writes_are_named_when_writes_are_wanted(
    database_url: str, tmp_path: Path
) -> None:
    """With target_session_attrs=read-write the driver refuses a standby (here a database set
    read-only, which it judges alike) rather than connect; health says which hosts and why."""
    name = database_url.rsplit("/", 1)[1]
    settings = Settings(
        database_url=f"{database_url}?target_session_attrs=read-write",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    await _admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        error = (await _health_of(settings)).json()["error"]
    finally:
        await _admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    assert error["code"] == "database_unavailable"
    assert error["message"] == (
        f"no database at {make_url(database_url).host}:{make_url(database_url).port} takes "
        "writes (each is a standby or read-only): promote one, or list the primary"
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_server_with_no_connection_slot_left_is_named_and_calls_fail_closed(
    database_url: str, tmp_path: Path
) -> None:
    """Every slot taken (`max_connections`, or here a role's connection limit: the same
    SQLSTATE 53300, without starving the shared server): health says so and how to fit, and a
    call answers 503 database_unavailable — not the 500 a bare driver error used to give."""
    role = f"qm_no_slot_{os.getpid()}"
    await _admin(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    url = make_url(database_url).set(username=role)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    try:
        async with _served(settings) as http:
            health = await http.get("/healthz")
            call = await http.post(
                "/v1/chat/completions",
                headers={"Authorization": "Bearer qm-not-a-real-key"},
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            )
    finally:
        await _admin(f'DROP ROLE "{role}"')
    assert health.status_code == 503
    assert health.json()["error"]["message"] == (
        f"database unreachable at {url.host}:{url.port}: it refuses new connections "
        "(max_connections, or a connection limit on the role or the database, is reached): "
        "each process opens up to twice QM_DB_POOL_SIZE"
    )
    assert role not in health.text
    assert call.status_code == 503, call.text
    assert call.json()["error"]["code"] == "database_unavailable"
