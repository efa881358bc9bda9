"""The organization pages over HTTP: who may open them (and what the others are told), both
token columns saved in one request with a stale edit shown in the row, CSRF on every form,
escaping of attacker-chosen names, the statistics by route beside those by model, the security
headers on every page, the model allow-list form, token requests by name, and a form the server
cannot read answered with a page."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.domain.types import TokenKind
from quartermaster.services import catalog, datasets, ledger
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership, model_list, token_requests
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.web.security import CSP
from tests.e2e.api_client import Browser, enrol_mfa, new_client, sign_in
from tests.e2e.web_client import submit
from tests.factories import CAP, PASSWORD, OrgFixture, add_org
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT

ADMIN_PAGES = ["/org", "/org/allocations", "/org/requests", "/org/models", "/org/stats"]
ADMIN_PAGES += ["/org/activity"]
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_TITLE = "<img src=x onerror=alert(1)>"


async def admin_of(app: FastAPI, org: OrgFixture, clock: FixedClock, which: int = 0) -> Browser:
    return await enrol_mfa(await sign_in(new_client(app), org.admin_emails[which]), clock)


async def test_an_admin_sees_every_page_with_the_security_headers(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    admin = await admin_of(app, org, clock)
    for path in ADMIN_PAGES:
        answer = await admin.http.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
    users = (await admin.http.get("/org")).text
    for heading in ("Tokens purchased", "Training token balance", "Max train tokens"):
        assert heading in users
    assert all(email in users for email in org.member_emails)
    assert f"/api/orgs/{org.org_id}/exports/users-tokens.csv" in users
    await admin.http.aclose()


async def test_the_statistics_show_tokens_by_route_beside_by_model(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    for request_id, route in (("web-1", Route.MESSAGES), ("web-2", Route.RESPONSES)):
        await ledger.reserve(ctx, org.member_ids[0], CHAT, 1_200, 0, request_id, route=route)
        await ledger.settle(ctx, request_id, 1_000 if route is Route.MESSAGES else 200, 0)
    admin = await admin_of(app, org, clock)
    page = (await admin.http.get("/org/stats")).text
    month = (await admin.http.get("/org/stats?model_period=2026-11")).text
    await admin.http.aclose()
    by_model, by_route = page.index("By model, all time"), page.index("By route, all time")
    assert by_model < by_route
    rows = [page.index(f'<th scope="row">{name}</th>') for name in ("messages", "responses")]
    assert by_route < rows[0] < rows[1]  # the most used first
    assert '<td class="num">1,000</td>' in page[rows[0] :]
    assert "By route in 2026-11" in month


async def test_members_and_unverified_admins_are_told_why(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    async with new_client(app) as m, new_client(app) as a:
        await sign_in(m, org.member_emails[0])
        await sign_in(a, org.admin_emails[0])
        for path in ADMIN_PAGES:
            member = await m.get(path)
            assert member.status_code == 403
            assert "Only your organization&#39;s administrators" in member.text
            admin = await a.get(path)
            assert admin.status_code == 403
            assert "two-factor authentication verified in this session" in admin.text
            assert 'href="/settings/security"' in admin.text
        assert (await m.get("/operator")).status_code == 403
        assert (await a.get("/operator")).status_code == 403


async def test_an_admin_asking_for_another_org_gets_404(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    mine, theirs = await add_org(ctx), await add_org(ctx)
    admin = await admin_of(app, mine, clock)
    for path in ADMIN_PAGES:
        assert (await admin.http.get(f"{path}?org={theirs.org_id}")).status_code == 404, path
    user = theirs.member_ids[0]
    edit = {"max_inference_tokens": "300000", "max_training_tokens": "0", "version": "2"}
    url = f"/org/members/{user}/allocation?org={theirs.org_id}"
    assert (await submit(admin, url, edit)).status_code == 404
    await admin.http.aclose()


async def test_both_token_columns_save_in_one_post_and_a_stale_edit_is_shown(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx, admins=2)
    first, second = await admin_of(app, org, clock), await admin_of(app, org, clock, 1)
    user = org.member_ids[0]
    url = f"/org/members/{user}/allocation?org={org.org_id}"
    saved = await submit(
        first,
        url,
        {"max_inference_tokens": "600,000", "max_training_tokens": "50000", "version": "2"},
        htmx=True,
    )
    assert saved.status_code == 200, saved.text
    assert saved.text.lstrip().startswith(f'<tr id="member-{user}"')
    assert 'value="600,000"' in saved.text  # shown as people read it, with separators
    assert 'value="50,000"' in saved.text
    assert 'name="version" value="3"' in saved.text
    assert 'aria-label="Tokens this month" hx-swap-oob="true"' in saved.text  # the cards too
    late = {"max_inference_tokens": "700000", "max_training_tokens": "70000", "version": "2"}
    stale = await submit(second, url, late, htmx=True)
    assert stale.status_code == 409
    assert "This member was changed since you opened the page (perhaps in another tab)" in (
        stale.text
    )
    assert "600,000" in stale.text
    assert "50,000" in stale.text
    assert 'value="700000"' in stale.text
    assert 'value="70000"' in stale.text
    plain = await submit(second, url, late)  # without JavaScript: the whole page
    assert plain.status_code == 409
    assert "Manage your organization" in plain.text
    row = next(r for r in await _members(ctx, org) if r["user_id"] == user)
    assert (row["max_inference_tokens"], row["max_training_tokens"]) == (600_000, 50_000)
    log = (await first.http.get(f"/org/activity?action=allocation&user_id={user}")).text
    assert "allocation.set" in log
    assert "Max tokens 1,000,000 → 600,000" in log
    assert "Max train tokens 100,000 → 50,000" in log
    await first.http.aclose()
    await second.http.aclose()


async def _members(ctx: Context, org: OrgFixture) -> list[dict[str, object]]:
    return await membership.list_members(ctx, Principal.command_line(), org.org_id)


async def test_forms_without_the_csrf_token_change_nothing(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    admin = await admin_of(app, org, clock)
    user = org.member_ids[0]
    forms = {
        f"/org/members/{user}/allocation": {
            "max_inference_tokens": "900000",
            "max_training_tokens": "0",
            "version": "2",
        },
        f"/org/members/{user}/update": {"banned": "true"},
        f"/org/members/{user}/remove": {},
        "/org/members": {"email": "x@example.com", "role": "member"},
        "/org/auto-approval": {"enabled": "yes", "max_tokens": "10"},
        "/org/models": {"model": "all-minilm-l6-v2"},
    }
    for path, data in forms.items():
        refused = await admin.http.post(f"{path}?org={org.org_id}", data=data)
        assert refused.status_code == 403, path
        assert "did not come from this site" in refused.text
    rows = await _members(ctx, org)
    assert [r["max_inference_tokens"] for r in rows] == [CAP[0]] * 3
    assert not any(r["banned"] for r in rows)
    await admin.http.aclose()


async def test_member_changes_bulk_plans_and_requests_through_the_forms(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    admin = await admin_of(app, org, clock)
    user, q = org.member_ids[1], f"?org={org.org_id}"
    banned = await submit(admin, f"/org/members/{user}/update{q}", {"banned": "true"}, htmx=True)
    assert "banned" in banned.text
    assert "Unban" in banned.text
    last = await submit(admin, f"/org/members/{org.admin_ids[0]}/update{q}", {"role": "member"})
    assert last.status_code == 400
    assert "last admin" in last.text
    typed = {"kind": "inference", "strategy": "fixed", "amount": "250000", "maximum": ""}
    shown = await submit(admin, f"/org/allocations/preview{q}", typed)
    assert shown.status_code == 200
    assert "Apply this plan" in shown.text
    plan_hash = shown.text.split('name="plan_hash" value="')[1][:64]
    applied = await submit(admin, f"/org/allocations/apply{q}", {**typed, "plan_hash": plan_hash})
    assert "Applied: 3 members" in applied.text
    again = await submit(admin, f"/org/allocations/apply{q}", {**typed, "plan_hash": plan_hash})
    assert again.status_code == 409
    assert "preview again" in again.text
    assert {r["max_inference_tokens"] for r in await _members(ctx, org)} == {250_000}
    await admin.http.aclose()


async def test_attacker_chosen_names_are_escaped_everywhere(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    email = "mallory@example.com"
    mallory = await register(ctx, Registration(email, PASSWORD, SCRIPT_NAME, True))
    await membership.add_member(ctx, Principal.command_line(), org.org_id, email)
    owner = Principal(mallory, False, False, "session")
    await datasets.create(ctx, owner, IMG_TITLE, shared_with_org=True)
    admin = await admin_of(app, org, clock)
    pages = [*ADMIN_PAGES, "/datasets", "/chat", "/org?email=mallory"]
    for path in pages:
        body = (await admin.http.get(path)).text
        assert SCRIPT_NAME not in body, path
        assert IMG_TITLE not in body, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (await admin.http.get("/org")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in (await admin.http.get("/datasets")).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in (await admin.http.get("/org/activity")).text
    await admin.http.aclose()


@pytest.mark.parametrize("query", ["sort=email&order=desc", "role=admin", "status=banned"])
async def test_the_user_table_sorts_and_filters_from_the_address(
    app: FastAPI, ctx: Context, clock: FixedClock, query: str
) -> None:
    org = await add_org(ctx)
    admin = await admin_of(app, org, clock)
    table = (await admin.http.get(f"/org?{query}")).text.split("<tbody>")[1]
    everyone = org.admin_emails + org.member_emails
    shown = sorted((table.index(e), e) for e in everyone if e in table)
    expected = {"role=admin": org.admin_emails, "status=banned": []}
    assert [e for _, e in shown] == expected.get(query, sorted(everyone, reverse=True))
    await admin.http.aclose()


async def test_the_model_allow_list_saves_with_one_both_or_no_box_ticked(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    admin = await admin_of(app, org, clock)
    url = f"/org/models?org={org.org_id}"
    names = sorted(m.name for m in await catalog.list_models(ctx) if m.enabled)[:2]
    for ticked, said in (
        ([names[0]], "Allow-list saved."),
        (names, "Allow-list saved."),
        ([], "Every enabled model is open to members."),
    ):
        saved = await submit(admin, url, {"model": ticked})
        assert saved.status_code == 200, saved.text
        assert said in saved.text
        assert await model_list.get(ctx, Principal.command_line(), org.org_id) == (ticked or None)
    await admin.http.aclose()


async def test_a_form_the_server_cannot_read_gets_a_page_never_json(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    admin = await admin_of(app, org, clock)
    odd = await submit(admin, f"/org/members/nobody/allocation?org={org.org_id}", {})
    assert odd.status_code == 400
    assert odd.headers["content-type"].startswith("text/html")
    assert '{"error"' not in odd.text
    assert "Something needs attention" in odd.text
    api_url = f"/api/orgs/{org.org_id}/members/nobody/allocation"
    api = await admin.http.put(api_url, json={}, headers=admin.headers())
    assert api.json()["error"]["param"] == "user_id"  # the API keeps its JSON error
    await admin.http.aclose()


async def test_token_requests_name_the_member(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    member_id, email = org.member_ids[0], org.member_emails[0]
    member = Principal(member_id, False, False, "session")
    await token_requests.ask(ctx, member, TokenKind.INFERENCE, 1_500_000, "a big pilot")
    admin = await admin_of(app, org, clock)
    page = (await admin.http.get(f"/org/requests?org={org.org_id}")).text
    row = page.split("a big pilot")[0].rsplit("<tr>", 1)[1]
    assert email in row
    assert f">{member_id}<" not in row
    assert 'value="1,500,000"' in page
    await admin.http.aclose()
