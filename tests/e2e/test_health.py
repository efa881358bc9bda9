from pathlib import Path

import httpx
import pytest

from quartermaster.app import create_app
from quartermaster.settings import ConfigurationError, Settings
from tests.conftest import TEST_SECRET


async def test_healthz_reports_a_reachable_current_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


async def _health_of(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm.test") as http:
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
    assert "there is no such page" in page.text
    assert page.headers["content-type"].startswith("text/html")


def test_the_app_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QM_SECRET_KEY"):
        create_app(Settings(data_dir=tmp_path, secret_key=None, demo=False))
