"""Session fixation: whatever session cookie a browser carried before signing in — made up, or
an attacker's own valid one planted in the victim's browser — is never the session after it,
and never gains the victim's identity. (Lock-out and back-off: tests/e2e/test_signin.py.)"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from quartermaster.http.deps import SESSION_COOKIE
from quartermaster.services.context import Context
from tests.e2e.api_client import new_client, sign_in
from tests.factories import PASSWORD, add_user


async def _plant_and_sign_in(http: httpx.AsyncClient, planted: str, email: str) -> str:
    http.cookies.set(SESSION_COOKIE, planted, domain="qm.test")
    answer = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return http.cookies[SESSION_COOKIE]


async def test_a_made_up_cookie_is_replaced_and_worthless(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "vic@example.com")
    planted = "attacker-chosen-value"
    assert await _plant_and_sign_in(client, planted, "vic@example.com") != planted
    client.cookies.set(SESSION_COOKIE, planted, domain="qm.test")
    assert (await client.get("/api/me")).status_code == 401


async def test_an_attackers_own_session_planted_in_the_victims_browser_stays_the_attackers(
    app: FastAPI, ctx: Context
) -> None:
    await add_user(ctx, "mal@example.com")
    await add_user(ctx, "vic@example.com")
    async with new_client(app) as attacker, new_client(app) as victim:
        await sign_in(attacker, "mal@example.com")
        planted = attacker.cookies[SESSION_COOKIE]
        after = await _plant_and_sign_in(victim, planted, "vic@example.com")
        assert after != planted
        assert (await victim.get("/api/me")).json()["email"] == "vic@example.com"
        assert (await attacker.get("/api/me")).json()["email"] == "mal@example.com"
