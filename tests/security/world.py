"""A populated platform for the security tests: an operator and two organizations whose people
each hold an MFA-verified session or an API key, a dataset, a pending token request and a spare
key — and the one table that says which of those fills each path parameter of the route table.

Everything is set up through the JSON API (and the factories), the way people would do it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.services.context import Context
from quartermaster.store.models.base import Base
from tests.e2e.api_client import Browser, enrol_mfa, sign_in
from tests.factories import OrgFixture, add_org, add_user
from tests.fakes.clock import FixedClock

OPERATOR_EMAIL = "operator@example.com"
PLAN = "plus"
"""A plan every fresh database has (`data/plans.toml`)."""


@dataclass
class Person:
    """A signed-in user: their browser (session cookie + CSRF), and an API key of their own."""

    user_id: int
    email: str
    browser: Browser
    key: str = ""
    spare_key_id: int = 0
    dataset_id: int = 0
    document_id: int = 0
    request_id: int = 0

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Tenant:
    org: OrgFixture
    admin: Person
    member: Person
    other_member: Person


@dataclass
class World:
    operator: Person
    mine: Tenant
    theirs: Tenant
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def close(self) -> None:
        for http in self.clients:
            await http.aclose()


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://qm.test")


async def _person(
    world_clients: list[httpx.AsyncClient],
    app: FastAPI,
    clock: FixedClock,
    user_id: int,
    email: str,
    mfa: bool,
) -> Person:
    """Sign in (enrolling MFA for admins and operators, so their keys may administer), then
    create an API key and a spare one."""
    http = _client(app)
    world_clients.append(http)
    browser = await sign_in(http, email)
    if mfa:
        await enrol_mfa(browser, clock)
    person = Person(user_id, email, browser)
    key = await browser.post("/api/me/api-keys", json={"name": "main"})
    assert key.status_code == 201, key.text
    person.key = key.json()["key"]
    spare = await browser.post("/api/me/api-keys", json={"name": "spare"})
    person.spare_key_id = spare.json()["id"]
    return person


async def _with_belongings(person: Person) -> Person:
    """A private dataset with a document in it, and a pending token request of their own."""
    dataset = await person.browser.post("/api/datasets", json={"name": "Notes"})
    assert dataset.status_code == 201, dataset.text
    person.dataset_id = dataset.json()["id"]
    note = (
        "files",
        (f"notes-{person.user_id}.txt", b"The boiler is serviced in May.", "text/plain"),
    )
    stored = await person.browser.post(f"/api/datasets/{person.dataset_id}/documents", files=[note])
    assert stored.status_code == 201, stored.text
    person.document_id = stored.json()["results"][0]["document_id"]
    asked = await person.browser.post(
        "/api/me/token-requests", json={"amount": 1000, "reason": "a report"}
    )
    assert asked.status_code == 201, asked.text
    person.request_id = asked.json()["id"]
    return person


async def _tenant(ctx: Context, app: FastAPI, clock: FixedClock, clients: list[Any]) -> Tenant:
    org = await add_org(ctx, admins=1, members=2)
    admin = await _person(clients, app, clock, org.admin_ids[0], org.admin_emails[0], True)
    member, other = [
        await _with_belongings(await _person(clients, app, clock, uid, email, False))
        for uid, email in zip(org.member_ids, org.member_emails, strict=True)
    ]
    return Tenant(org, admin, member, other)


async def build_world(ctx: Context, app: FastAPI, clock: FixedClock) -> World:
    clients: list[httpx.AsyncClient] = []
    operator_id = await add_user(ctx, OPERATOR_EMAIL, operator=True)
    operator = await _person(clients, app, clock, operator_id, OPERATOR_EMAIL, True)
    mine = await _tenant(ctx, app, clock, clients)
    theirs = await _tenant(ctx, app, clock, clients)
    return World(operator, mine, theirs, clients)


def path_values(target: Tenant) -> dict[str, str]:
    """What fills each path parameter when `target` is the one being reached for. A route with
    a parameter missing here fails `fill`: whoever adds it must say what it refers to."""
    return {
        "org_id": str(target.org.org_id),
        "user_id": str(target.member.user_id),
        "dataset_id": str(target.member.dataset_id),
        "document_id": str(target.member.document_id),
        "key_id": str(target.member.spare_key_id),
        "request_id": str(target.member.request_id),
        "name": PLAN,
    }


PARAMETER = re.compile(r"\{([^}]+)\}")


def fill(path: str, values: dict[str, str]) -> str:
    unknown = set(PARAMETER.findall(path)) - values.keys()
    assert not unknown, f"{path}: teach tests/security/world.py:path_values about {unknown}"
    return PARAMETER.sub(lambda match: values[match.group(1)], path)


def api_operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (METHOD, path) of /api and /v1 in the generated OpenAPI schema."""
    operations = [
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        if path.startswith(("/api/", "/v1/"))
        for method in methods
    ]
    assert len(operations) > 50, "the route table lists the API"
    return operations


async def snapshot(ctx: Context) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare before and after a refused request."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with ctx.uow.begin(write=False) as tx:
        for name, table in Base.metadata.tables.items():
            result = await tx.session.execute(select(table))
            rows[name] = sorted((tuple(row) for row in result), key=repr)
    return rows
