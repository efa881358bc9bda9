"""Secrets stay secret: an API key is shown once, at creation, and never logged, listed or
stored; the database password, an upstream's API key and the secret key never appear in an
error message or a log line, however things fail."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from quartermaster.app import create_app
from quartermaster.services.context import Context
from quartermaster.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.api_client import sign_in
from tests.e2e.gateway_fixtures import FAKE_UPSTREAM, fake_providers, key_for
from tests.factories import add_org, add_user
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT
from tests.security.cases import BASE_URL
from tests.security.world import snapshot

DB_PASSWORD = "pw-Hunter2-do-not-print"
UPSTREAM_KEY = "sk-upstream-0123456789-do-not-print"
CHAT_CALL = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


async def test_a_key_is_shown_once_and_never_logged_listed_or_stored(
    client: httpx.AsyncClient, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    await add_user(ctx, "kim@example.com")
    browser = await sign_in(client, "kim@example.com")
    with caplog.at_level(logging.DEBUG):
        created = await browser.post("/api/me/api-keys", json={"name": "laptop"})
        key = created.json()["key"]
        bearer = {"Authorization": f"Bearer {key}"}
        seen = [
            await client.get("/api/me", headers=bearer),
            await client.get("/api/me/api-keys"),
            await client.get("/api/me/logins"),
            await client.get("/v1/models", headers=bearer),
        ]
        assert (await browser.delete(f"/api/me/api-keys/{created.json()['id']}")).status_code == 204
        seen += [await client.get("/api/me", headers=bearer), await client.get("/api/me/api-keys")]
    assert [r.status_code for r in seen] == [200, 200, 200, 200, 401, 200]
    assert key.startswith(seen[1].json()[0]["prefix"])  # the list shows a prefix only
    for response in seen:
        assert key not in response.text
    assert key not in caplog.text
    assert key not in repr(await snapshot(ctx))  # stored as a hash


async def test_an_unreachable_database_is_a_503_that_names_no_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+asyncpg://qm:{DB_PASSWORD}@127.0.0.1:1/qm"  # nothing listens on port 1
    settings = Settings(database_url=url, secret_key=TEST_SECRET, data_dir=tmp_path)
    app = create_app(settings, clock=FixedClock(), providers=fake_providers(FakeUpstream()))
    with caplog.at_level(logging.DEBUG):
        async with app.router.lifespan_context(app), _client(app) as http:
            answers = [
                await http.get("/api/me", headers={"Authorization": "Bearer qm-x"}),
                await http.post(
                    "/v1/chat/completions", json=CHAT_CALL, headers={"Authorization": "Bearer qm-x"}
                ),
                await http.post("/api/auth/login", json={"email": "a@b.c", "password": "x" * 12}),
            ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "database_unavailable"
        for secret in (DB_PASSWORD, TEST_SECRET):
            assert secret not in answer.text
    assert DB_PASSWORD not in caplog.text
    assert TEST_SECRET not in caplog.text


@pytest.mark.parametrize("status", [401, 500])
async def test_an_upstream_echoing_its_key_does_not_pass_it_on(
    settings: Settings,
    ctx: Context,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    """Real upstreams say "Incorrect API key provided: sk-…"; that text reaches our caller."""
    monkeypatch.setenv("QM_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    config = dataclasses.replace(FAKE_UPSTREAM, api_key_env="QM_TEST_UPSTREAM_KEY")
    fake = FakeUpstream(error_status=status, error_message=f"Incorrect key: {UPSTREAM_KEY}")
    app = create_app(settings, clock=clock, providers=fake_providers(fake, config))
    org = await add_org(ctx)
    bearer = {"Authorization": f"Bearer {await key_for(ctx, org.member_ids[0])}"}
    with caplog.at_level(logging.DEBUG):
        async with app.router.lifespan_context(app), _client(app) as http:
            answer = await http.post("/v1/chat/completions", json=CHAT_CALL, headers=bearer)
    assert fake.requests[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert answer.status_code in (401, 502), answer.text
    assert "Incorrect key: [redacted]" in answer.json()["error"]["message"]
    assert UPSTREAM_KEY not in answer.text
    assert UPSTREAM_KEY not in caplog.text


async def test_an_unexpected_error_is_a_500_that_says_nothing(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken() -> None:
        raise RuntimeError(f"connecting with {DB_PASSWORD} and {TEST_SECRET}")

    app.add_api_route("/api/broken", broken)
    async with _client(app) as http:
        answer = await http.get("/api/broken")
    assert answer.status_code == 500
    assert answer.json()["error"]["message"] == "internal error; the operator's log has the details"
    assert DB_PASSWORD not in answer.text
    assert TEST_SECRET not in answer.text
    assert "RuntimeError" in caplog.text  # the operator's log does have the details
