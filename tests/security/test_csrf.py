"""CSRF on every state-changing route of /api and /v1, walked from the route table: a request
authenticated by the session cookie but without the X-CSRF-Token header is refused with
`403 csrf_failed` — even from the one person who could otherwise do it — and no row changes.

(The same for the dashboard's forms: tests/e2e/test_web_org_pages.py.)
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.security.cases import valid_request
from tests.security.world import World, api_operations, fill, path_values, snapshot

CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
BEFORE_SIGN_IN = {"/api/auth/register", "/api/auth/login", "/api/auth/mfa", "/api/auth/cac"}
"""Routes that create a session rather than use one: no session means no CSRF token yet. They
take JSON only, which a cross-site form cannot send, and a session they open is a new one."""


def _allowed_person(world: World, path: str) -> httpx.AsyncClient:
    """Whose session would be allowed to make this change, so CSRF is the only obstacle."""
    if path.startswith(("/api/operator/", "/api/users/")):
        return world.operator.browser.http
    if path.startswith("/api/orgs/"):
        return world.mine.admin.browser.http
    return world.mine.member.browser.http


async def test_cookie_changes_without_the_csrf_header_are_refused_and_change_nothing(
    app: FastAPI, ctx: Context, world: World
) -> None:
    changes = [
        (method, path)
        for method, path in api_operations(app)
        if method in CHANGES and path not in BEFORE_SIGN_IN
    ]
    assert len(changes) > 30
    before = await snapshot(ctx)
    for method, path in changes:
        http = _allowed_person(world, path)
        url = fill(path, path_values(world.mine))
        response = await http.send(valid_request(http, method, path, url, {}))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "csrf_failed", (method, path)
    assert await snapshot(ctx) == before


async def test_the_routes_before_sign_in_take_no_session(app: FastAPI) -> None:
    """The exemption above holds only while these routes stay pre-sign-in and JSON-only."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://qm.test"
    ) as http:
        form = await http.post("/api/auth/login", data={"email": "a@b.c", "password": "x" * 12})
        assert form.status_code == 400
    assert {path for _, path in api_operations(app)} >= BEFORE_SIGN_IN
