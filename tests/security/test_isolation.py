"""Tenant isolation on every endpoint with an id in its path, walked from the OpenAPI route
table (so a new endpoint is covered the day it appears, and one with a path parameter nobody
taught `world.path_values` fails here): an admin and a member of one organization reach for
another organization's org, members, datasets, token requests and API keys, and for the plans
only operators edit. Each is refused with 403 or 404, and no row of any table changes.

Each request is one the route's schema accepts, so a refusal comes from the
authorization check and not from a body that failed validation.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.security.cases import valid_request
from tests.security.world import (
    PARAMETER,
    Person,
    Tenant,
    World,
    api_operations,
    fill,
    path_values,
    snapshot,
)


def _targets(path: str, attacker: Tenant, victim: Tenant) -> list[str]:
    """The victim's objects, all of them; and when the path has ids besides `org_id`, the
    attacker's own org with the victim's other ids (the classic id swap)."""
    theirs = path_values(victim)
    urls = [fill(path, theirs)]
    if set(PARAMETER.findall(path)) - {"org_id"} and "{org_id}" in path:
        urls.append(fill(path, {**theirs, "org_id": str(attacker.org.org_id)}))
    return urls


async def _send(person: Person, method: str, path: str, url: str) -> httpx.Response:
    """As the person's browser: their session cookie and CSRF token."""
    http = person.browser.http
    request = valid_request(http, method, path, url, person.browser.headers())
    return await http.send(request)


async def test_no_one_reaches_another_organizations_or_users_objects(
    app: FastAPI, ctx: Context, world: World
) -> None:
    routes = [(m, p) for m, p in api_operations(app) if PARAMETER.search(p)]
    attackers = (world.mine.admin, world.mine.member)
    before = await snapshot(ctx)
    for method, path in routes:
        for url in _targets(path, world.mine, world.theirs):
            for person in attackers:
                response = await _send(person, method, path, url)
                assert response.status_code in (403, 404), (method, url, response.text)
    assert await snapshot(ctx) == before


async def test_the_same_requests_work_for_the_owner(app: FastAPI, world: World) -> None:
    """The walk above proves something only if its requests can succeed: the victim's own
    admin reading their org and their member reading their dataset get 200."""
    theirs = path_values(world.theirs)
    for person, path in (
        (world.theirs.admin, "/api/orgs/{org_id}/members"),
        (world.theirs.member, "/api/datasets/{dataset_id}"),
    ):
        response = await _send(person, "GET", path, fill(path, theirs))
        assert response.status_code == 200, (path, response.text)
