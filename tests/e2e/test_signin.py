"""Registration, sign-in, sessions, CSRF and lock-out, through the JSON API."""

from __future__ import annotations

import httpx
import pytest

from quartermaster.services.context import Context
from tests.e2e.api_client import sign_in
from tests.factories import PASSWORD, add_user
from tests.fakes.clock import FixedClock


async def test_registration_needs_terms_and_a_strong_unique_password(
    client: httpx.AsyncClient,
) -> None:
    body = {"email": "New@Example.com", "password": PASSWORD, "name": "New"}
    refused = await client.post("/api/auth/register", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "accept_terms"
    weak = await client.post(
        "/api/auth/register", json={**body, "password": "password1234", "accept_terms": True}
    )
    assert weak.status_code == 400
    assert weak.json()["error"]["param"] == "password"
    created = await client.post("/api/auth/register", json={**body, "accept_terms": True})
    assert created.status_code == 201
    again = await client.post(
        "/api/auth/register", json={**body, "email": "new@EXAMPLE.com", "accept_terms": True}
    )
    assert again.status_code == 409


async def test_sign_in_sets_a_hardened_cookie_and_a_fresh_session_each_time(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "sam@example.com")
    first = await client.post(
        "/api/auth/login", json={"email": "SAM@example.com", "password": PASSWORD}
    )
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie.replace("SameSite=Lax", "SameSite=lax")
    token_one = client.cookies["qm_session"]
    await client.post("/api/auth/login", json={"email": "sam@example.com", "password": PASSWORD})
    assert client.cookies["qm_session"] != token_one  # no session fixation
    me = await client.get("/api/me")
    assert me.json()["email"] == "sam@example.com"


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "tia@example.com")
    wrong = await client.post(
        "/api/auth/login", json={"email": "tia@example.com", "password": "x" * 12}
    )
    unknown = await client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_state_changes_without_the_csrf_token_are_refused(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "cy@example.com")
    browser = await sign_in(client, "cy@example.com")
    forged = await client.post("/api/me/api-keys", json={"name": "x"})
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"
    wrong = await client.post(
        "/api/me/api-keys", json={"name": "x"}, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403
    keys = await client.get("/api/me/api-keys")
    assert keys.json() == []
    made = await browser.post("/api/me/api-keys", json={"name": "laptop"})
    assert made.status_code == 201


async def test_sign_out_ends_the_session_at_once(client: httpx.AsyncClient, ctx: Context) -> None:
    await add_user(ctx, "out@example.com")
    browser = await sign_in(client, "out@example.com")
    stolen = client.cookies["qm_session"]
    assert (await browser.post("/api/auth/logout")).status_code == 204
    client.cookies.set("qm_session", stolen, domain="qm.test")
    replay = await client.get("/api/me")
    assert replay.status_code == 401


async def test_sessions_expire_when_idle_and_at_their_lifetime(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "idle@example.com")
    await sign_in(client, "idle@example.com")
    clock.advance(minutes=50)
    assert (await client.get("/api/me")).status_code == 200
    clock.advance(minutes=61)
    expired = await client.get("/api/me")
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "session_expired"
    await sign_in(client, "idle@example.com")
    for _ in range(13):
        clock.advance(minutes=59)
        await client.get("/api/me")
    assert (await client.get("/api/me")).status_code == 401


async def test_lock_out_after_repeated_failures_and_recovery(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "lo@example.com")
    wrong = {"email": "lo@example.com", "password": "wrong-password-123"}
    statuses = [(await client.post("/api/auth/login", json=wrong)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    right = {"email": "lo@example.com", "password": PASSWORD}
    locked = await client.post("/api/auth/login", json=right)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "account_locked"
    assert int(locked.headers["Retry-After"]) > 0
    clock.advance(seconds=int(locked.headers["Retry-After"]) + 1)
    assert (await client.post("/api/auth/login", json=right)).status_code == 200
    # the counter was reset by the success: one more failure does not lock again
    assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    assert (await client.post("/api/auth/login", json=right)).status_code == 200


async def test_lock_never_lasts_more_than_fifteen_minutes(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "long@example.com")
    wrong = {"email": "long@example.com", "password": "wrong-password-123"}
    for _ in range(25):
        response = await client.post("/api/auth/login", json=wrong)
        clock.advance(seconds=int(response.headers.get("Retry-After", "0")) + 1)
    right = {"email": "long@example.com", "password": PASSWORD}
    locked = await client.post("/api/auth/login", json=right)
    assert int(locked.headers.get("Retry-After", "0")) <= 15 * 60
    clock.advance(minutes=16)
    assert (await client.post("/api/auth/login", json=right)).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_address_that_fails_too_often_is_slowed_for_every_account(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "victim@example.com")
    for i in range(30):
        await client.post(
            "/api/auth/login", json={"email": f"guess{i}@example.com", "password": "x" * 12}
        )
    blocked = await client.post(
        "/api/auth/login", json={"email": "victim@example.com", "password": PASSWORD}
    )
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "address_throttled"


async def test_login_history_records_every_attempt(client: httpx.AsyncClient, ctx: Context) -> None:
    await add_user(ctx, "hist@example.com")
    await client.post(
        "/api/auth/login", json={"email": "hist@example.com", "password": "nope-nope-nope"}
    )
    await sign_in(client, "hist@example.com")
    history = (await client.get("/api/me/logins")).json()
    assert [(h["success"], h["reason"], h["method"]) for h in history] == [
        (True, None, "password"),
        (False, "bad_password", "password"),
    ]
    assert history[0]["user_agent"]
