"""Every administrative endpoint, found from the OpenAPI route table (so a new one cannot be
forgotten), refuses callers outside the target's organization, members who are not admins, and
admins who have not verified MFA in this session. Refusals change nothing."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent
from tests.e2e.api_client import Browser, enrol_mfa, new_client, sign_in
from tests.factories import OrgFixture, add_org, add_user
from tests.fakes.clock import FixedClock

ADMIN_PREFIXES = ("/api/users/", "/api/orgs/", "/api/operator/")


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(ADMIN_PREFIXES):
            routes.extend((method.upper(), path) for method in operations)
    assert routes, "the route table lists administrative endpoints"
    return routes


def fill(path: str, target: OrgFixture) -> str:
    path = path.replace("{user_id}", str(target.member_ids[0]))
    path = path.replace("{org_id}", str(target.org_id))
    return re.sub(r"\{[^}]+\}", "1", path)


async def _audit_count(ctx: Context) -> int:
    async with ctx.uow.begin(write=False) as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def _call(browser: Browser, method: str, url: str) -> httpx.Response:
    return await browser.http.request(method, url, headers=browser.headers(), json={})


async def test_admin_endpoints_refuse_other_orgs_members_and_unverified_admins(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    mine, theirs = await add_org(ctx), await add_org(ctx)
    async with new_client(app) as a, new_client(app) as b, new_client(app) as c:
        other_admin = await enrol_mfa(await sign_in(a, mine.admin_emails[0]), clock)
        member = await sign_in(b, theirs.member_emails[1])
        unverified_admin = await sign_in(c, theirs.admin_emails[0])
        before = await _audit_count(ctx)
        for method, path in admin_routes(app):
            url = fill(path, theirs)
            cross = await _call(other_admin, method, url)
            assert cross.status_code in (403, 404), (method, path, cross.text)
            plain = await _call(member, method, url)
            assert plain.status_code in (403, 404), (method, path, plain.text)
            unverified = await _call(unverified_admin, method, url)
            assert unverified.status_code == 403, (method, path, unverified.text)
            assert unverified.json()["error"]["code"] in ("mfa_required", "operator_required")
        assert await _audit_count(ctx) == before


async def test_an_admin_with_mfa_reads_a_members_login_history(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    async with new_client(app) as a, new_client(app) as m:
        await sign_in(m, org.member_emails[0])
        admin = await sign_in(a, org.admin_emails[0])
        url = f"/api/users/{org.member_ids[0]}/logins"
        assert (await a.get(url)).json()["error"]["code"] == "mfa_required"
        await enrol_mfa(admin, clock)
        history = (await a.get(url)).json()
        assert history[0]["success"]


async def test_operator_resets_a_users_mfa_and_ends_their_sessions(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "ops@example.com", operator=True)
    user_id = await add_user(ctx, "lost@example.com")
    async with new_client(app) as o, new_client(app) as u:
        operator = await enrol_mfa(await sign_in(o, "ops@example.com"), clock)
        await enrol_mfa(await sign_in(u, "lost@example.com"), clock)
        assert (await operator.post(f"/api/users/{user_id}/mfa/reset")).status_code == 204
        assert (await u.get("/api/me")).status_code == 401
        await sign_in(u, "lost@example.com")  # no TOTP step any more
        assert not (await u.get("/api/me")).json()["mfa_enabled"]
    async with ctx.uow.begin(write=False) as tx:
        actions = list(await tx.session.scalars(select(AuditEvent.action)))
    assert "mfa.reset" in actions
