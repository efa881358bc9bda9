"""Driving the JSON API as a person or program would: sign in, enrol MFA, send CSRF tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pyotp

from tests.factories import PASSWORD
from tests.fakes.clock import FixedClock


@dataclass
class Browser:
    """An httpx client holding a session cookie, and the CSRF token to send with changes."""

    http: httpx.AsyncClient
    csrf: str = ""
    totp_secret: str | None = None
    recovery_codes: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}

    async def post(self, url: str, **kwargs: object) -> httpx.Response:
        return await self.http.post(url, headers=self.headers(), **kwargs)  # type: ignore[arg-type]

    async def delete(self, url: str) -> httpx.Response:
        return await self.http.delete(url, headers=self.headers())


def totp_now(secret: str, clock: FixedClock) -> str:
    return pyotp.TOTP(secret).at(clock.now())


async def sign_in(
    http: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    clock: FixedClock | None = None,
    totp_secret: str | None = None,
) -> Browser:
    """Password sign-in, answering the TOTP step when the account has MFA on."""
    http.cookies.clear()
    response = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    if body["mfa_required"]:
        assert totp_secret is not None
        assert clock is not None
        clock.advance(seconds=30)
        response = await http.post("/api/auth/mfa", json={"code": totp_now(totp_secret, clock)})
        assert response.status_code == 200, response.text
        body = response.json()
    return Browser(http, body["csrf_token"], totp_secret)


async def enrol_mfa(browser: Browser, clock: FixedClock) -> Browser:
    """Enrol TOTP in this session, which then counts as MFA-verified."""
    started = await browser.post("/api/me/mfa/enroll")
    assert started.status_code == 200, started.text
    browser.totp_secret = started.json()["secret"]
    confirmed = await browser.post(
        "/api/me/mfa/confirm", json={"code": totp_now(browser.totp_secret, clock)}
    )
    assert confirmed.status_code == 200, confirmed.text
    browser.recovery_codes = confirmed.json()["recovery_codes"]
    return browser


def new_client(app: object) -> httpx.AsyncClient:
    """A second, independent browser on the same app (its own cookie jar)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://qm.test")


def csv_of(answer: httpx.Response) -> str:
    """An export's text as a spreadsheet reads it: after the UTF-8 byte-order mark every export
    starts with (which is checked)."""
    assert answer.content.startswith(b"\xef\xbb\xbf"), answer.content[:20]
    return answer.content.decode("utf-8-sig")
