"""Stored XSS through the text people type that other people's pages show, beyond the names and
dataset titles of tests/e2e/test_web_org_pages.py: a token request's reason, an API key's name,
an uploaded file's name, a dataset title on its own page, an organization's name and billing
address. Every page that shows them escapes them; JSON errors that echo input stay JSON."""

from __future__ import annotations

from fastapi import FastAPI

from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.enterprise import provisioning
from tests.e2e.api_client import Browser, enrol_mfa, new_client, sign_in
from tests.e2e.gateway_fixtures import fake, gateway
from tests.factories import add_org, add_user
from tests.fakes.clock import FixedClock

__all__ = ["fake", "gateway"]  # fixtures
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _assert_escaped(page: str, where: str, shown: bool = True) -> None:
    assert "<script>alert" not in page, where
    assert (ESCAPED in page) == shown, where  # shown as text where the page shows it


async def _member_types_hostile_text(member: Browser) -> int:
    """A reason, a key name, a dataset title and a file name, all of them a script."""
    asked = await member.post("/api/me/token-requests", json={"amount": 5, "reason": SCRIPT})
    assert asked.status_code == 201, asked.text
    assert (await member.post("/api/me/api-keys", json={"name": SCRIPT})).status_code == 201
    made = await member.post("/api/datasets", json={"name": SCRIPT, "shared_with_org": True})
    dataset_id: int = made.json()["id"]
    upload = await member.http.post(
        f"/api/datasets/{dataset_id}/documents",
        files={"files": (f"{SCRIPT}.txt", b"The boiler is serviced in May.", "text/plain")},
        headers=member.headers(),
    )
    assert upload.status_code == 201, upload.text
    return dataset_id


async def test_what_members_type_is_escaped_on_every_page_that_shows_it(
    gateway: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    async with new_client(gateway) as m, new_client(gateway) as a:
        member = await sign_in(m, org.member_emails[0])
        dataset_id = await _member_types_hostile_text(member)
        _assert_escaped((await m.get("/settings")).text, "/settings", shown=False)
        for path in ("/settings/keys", f"/datasets/{dataset_id}"):
            _assert_escaped((await m.get(path)).text, path)
        await enrol_mfa(await sign_in(a, org.admin_emails[0]), clock)
        for path in ("/org/requests", "/org/activity", "/datasets", f"/datasets/{dataset_id}"):
            answer = await a.get(path)
            assert answer.status_code == 200, path
            _assert_escaped(answer.text, path)


async def test_organization_names_and_addresses_are_escaped_for_operators(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    emails = ["x1@example.com", "x2@example.com"]
    for email in emails:
        await add_user(ctx, email)
    request = Provisioning(
        name=SCRIPT,
        billing_address=SCRIPT,
        member_emails=emails,
        admin_emails=emails[:1],
        inference_tokens=2_000_000,
    )
    await provisioning.provision(ctx, Principal.command_line(), request)
    await add_user(ctx, "ops@example.com", operator=True)
    async with new_client(app) as http:
        await enrol_mfa(await sign_in(http, "ops@example.com"), clock)
        _assert_escaped((await http.get("/operator")).text, "/operator")


async def test_api_errors_echoing_input_are_json(app: FastAPI, ctx: Context) -> None:
    await add_user(ctx, "eve@example.com")
    async with new_client(app) as http:
        member = await sign_in(http, "eve@example.com")
        answer = await member.post("/api/me/plan", json={"plan": SCRIPT})
        bad_field = await http.get(f"/api/orgs/{SCRIPT}")
    for response in (answer, bad_field):
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.json()["error"]["message"]
