"""TOTP enrolment and sign-in, recovery codes, and API keys."""

from __future__ import annotations

import httpx

from quartermaster.services.context import Context
from tests.e2e.api_client import enrol_mfa, sign_in, totp_now
from tests.factories import PASSWORD, add_user
from tests.fakes.clock import FixedClock


async def test_enrolment_shows_a_local_qr_code_and_gives_ten_recovery_codes(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "m@example.com")
    browser = await sign_in(client, "m@example.com")
    started = await browser.post("/api/me/mfa/enroll")
    assert started.json()["qr_svg"].lstrip().startswith("<svg")
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/Quartermaster")
    bad = await browser.post("/api/me/mfa/confirm", json={"code": "000000"})
    assert bad.status_code == 400
    code = totp_now(started.json()["secret"], clock)
    confirmed = await browser.post("/api/me/mfa/confirm", json={"code": code})
    assert len(set(confirmed.json()["recovery_codes"])) == 10
    me = (await client.get("/api/me")).json()
    assert me["mfa_enabled"]
    assert me["mfa_verified_in_session"]


async def test_sign_in_with_mfa_needs_a_fresh_code_and_codes_cannot_be_replayed(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "two@example.com")
    browser = await enrol_mfa(await sign_in(client, "two@example.com"), clock)
    assert browser.totp_secret is not None
    client.cookies.clear()
    first = await client.post(
        "/api/auth/login", json={"email": "two@example.com", "password": PASSWORD}
    )
    assert first.json()["mfa_required"]
    assert (await client.get("/api/me")).status_code == 401  # no session before the code
    used_at_enrolment = totp_now(browser.totp_secret, clock)
    replay = await client.post("/api/auth/mfa", json={"code": used_at_enrolment})
    assert replay.status_code == 401
    clock.advance(seconds=30)
    ok = await client.post("/api/auth/mfa", json={"code": totp_now(browser.totp_secret, clock)})
    assert ok.status_code == 200
    assert ok.json()["mfa_verified"]
    history = (await client.get("/api/me/logins")).json()
    assert history[0]["mfa_used"]
    assert history[0]["success"]
    assert history[1]["reason"] == "bad_mfa_code"


async def test_a_recovery_code_works_once(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "rc@example.com")
    browser = await enrol_mfa(await sign_in(client, "rc@example.com"), clock)
    code = browser.recovery_codes[0]
    for expected in (200, 401):
        client.cookies.clear()
        step = await client.post(
            "/api/auth/login", json={"email": "rc@example.com", "password": PASSWORD}
        )
        answer = await client.post(
            "/api/auth/mfa", json={"code": code, "mfa_token": step.json()["mfa_token"]}
        )
        assert answer.status_code == expected
    assert (await client.get("/api/me")).status_code == 401


async def test_disabling_mfa_needs_password_and_code(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "off@example.com")
    browser = await enrol_mfa(await sign_in(client, "off@example.com"), clock)
    assert browser.totp_secret is not None
    clock.advance(seconds=30)
    code = totp_now(browser.totp_secret, clock)
    wrong = await browser.post(
        "/api/me/mfa/disable", json={"password": "not-my-password", "code": code}
    )
    assert wrong.status_code == 400
    assert (await client.get("/api/me")).json()["mfa_enabled"]
    done = await browser.post("/api/me/mfa/disable", json={"password": PASSWORD, "code": code})
    assert done.status_code == 204
    assert not (await client.get("/api/me")).json()["mfa_enabled"]


async def test_api_keys_are_shown_once_and_revocation_takes_effect_at_once(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    await add_user(ctx, "k@example.com")
    browser = await sign_in(client, "k@example.com")
    made = (await browser.post("/api/me/api-keys", json={"name": "ci"})).json()
    key = made["key"]
    listed = (await client.get("/api/me/api-keys")).json()
    assert listed[0]["prefix"] == key[:11]
    assert key not in str(listed)
    program = {"Authorization": f"Bearer {key}"}
    client.cookies.clear()
    assert (await client.get("/api/me", headers=program)).status_code == 200
    browser = await sign_in(client, "k@example.com")
    assert (await browser.delete(f"/api/me/api-keys/{made['id']}")).status_code == 204
    client.cookies.clear()
    refused = await client.get("/api/me", headers=program)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert key not in refused.text


async def test_expired_keys_are_refused(
    client: httpx.AsyncClient, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "exp@example.com")
    browser = await sign_in(client, "exp@example.com")
    made = (
        await browser.post("/api/me/api-keys", json={"name": "short", "expires_in_days": 1})
    ).json()
    clock.advance(days=1, seconds=1)
    client.cookies.clear()
    refused = await client.get("/api/me", headers={"Authorization": f"Bearer {made['key']}"})
    assert refused.json()["error"]["code"] == "expired_api_key"


async def test_a_key_cannot_create_keys(client: httpx.AsyncClient, ctx: Context) -> None:
    await add_user(ctx, "kk@example.com")
    browser = await sign_in(client, "kk@example.com")
    key = (await browser.post("/api/me/api-keys", json={"name": "a"})).json()["key"]
    client.cookies.clear()
    made = await client.post(
        "/api/me/api-keys", json={"name": "b"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert made.status_code == 403
