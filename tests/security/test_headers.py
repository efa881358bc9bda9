"""Security headers on every class of response: each /api and /v1 operation of the route table
(answered, refused, or unauthenticated), the dashboard's pages, static files, an unknown path,
an unexpected 500, and a streamed chat."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from quartermaster.services.context import Context
from quartermaster.web.security import CSP
from tests.e2e.api_client import enrol_mfa, new_client, sign_in
from tests.e2e.gateway_fixtures import fake, gateway, key_for
from tests.factories import add_org
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT
from tests.security.cases import BASE_URL, valid_request
from tests.security.world import api_operations

__all__ = ["fake", "gateway"]  # fixtures
REQUIRED = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}
PAGES = ["/", "/login", "/register", "/terms", "/chat", "/datasets", "/settings", "/org"]
PAGES += ["/settings/keys", "/settings/security", "/org/activity", "/operator", "/no-such-page"]
OTHERS = ["/static/app.css", "/static/app.js", "/healthz", "/api/no-such-route", "/openapi.json"]


def _assert_headers(response: httpx.Response, where: str) -> None:
    missing = {k: v for k, v in REQUIRED.items() if response.headers.get(k) != v}
    assert not missing, (where, response.status_code, missing)


async def test_every_api_operation_answers_with_the_headers(gateway: FastAPI, ctx: Context) -> None:
    org = await add_org(ctx)
    bearer = {"Authorization": f"Bearer {await key_for(ctx, org.member_ids[0])}"}
    async with new_client(gateway) as http:
        for method, path in api_operations(gateway):
            url = path.replace("{", "").replace("}", "")  # ids that cannot parse: a 400
            for headers in (bearer, {}):
                request = valid_request(http, method, path, url, headers)
                _assert_headers(await http.send(request), f"{method} {path}")
        stream = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        streamed = await http.post("/v1/chat/completions", json=stream, headers=bearer)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        _assert_headers(streamed, "a streamed chat")


async def test_pages_static_files_and_errors_carry_the_headers(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/broken", broken)
    org = await add_org(ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anonymous:
        for path in [*PAGES, *OTHERS, "/api/broken"]:
            _assert_headers(await anonymous.get(path), f"anonymous {path}")
    async with new_client(app) as http:
        await enrol_mfa(await sign_in(http, org.admin_emails[0]), clock)
        for path in PAGES:
            _assert_headers(await http.get(path), f"admin {path}")
