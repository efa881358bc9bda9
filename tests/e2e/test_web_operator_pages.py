"""The operator's pages over HTTP: provisioning with every refusal listed beside the form (and
what was typed kept), purchases and top-ups, MFA and CAC resets by email, and any org's pages."""

from __future__ import annotations

from fastapi import FastAPI

from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import profile
from tests.e2e.api_client import Browser, enrol_mfa, new_client, sign_in
from tests.e2e.web_client import submit
from tests.factories import add_org, add_user
from tests.fakes.clock import FixedClock


async def operator(app: FastAPI, ctx: Context, clock: FixedClock) -> Browser:
    await add_user(ctx, "ops@example.com", operator=True)
    return await enrol_mfa(await sign_in(new_client(app), "ops@example.com"), clock)


async def test_a_refused_provisioning_lists_every_problem_and_keeps_the_input(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    ops = await operator(app, ctx, clock)
    await add_user(ctx, "ann@example.com")
    await add_user(ctx, "bob@example.com")
    typed = {
        "name": "ABC Corp",
        "member_emails": "ann@example.com\nbob@example.com\nnobody@example.com",
        "admin_emails": "",
        "inference_tokens": "1000000",
        "additional_information": "Invoice quarterly, please",
    }
    refused = await submit(ops, "/operator/orgs", typed)
    assert refused.status_code == 400
    problems = refused.text.split('id="provision-problems"')[1].split("</ul>")[0]
    assert problems.count("<li>") == 4  # billing address, unregistered, no admin, whole bundles
    assert "The billing address is required" in problems
    assert "nobody@example.com" in problems
    assert "Invoice quarterly, please</textarea>" in refused.text
    assert "ann@example.com\nbob@example.com\nnobody@example.com</textarea>" in refused.text
    assert 'value="ABC Corp"' in refused.text
    good = {
        **typed,
        "member_emails": "ann@example.com, bob@example.com",
        "inference_tokens": "2000000",
        "billing_address": "1 Main Street, Springfield",
    }
    made = await submit(ops, "/operator/orgs", {**good, "admin_emails": "ann@example.com"})
    assert made.status_code == 303
    account = await ops.http.get(made.headers["location"])
    assert "ABC Corp" in account.text
    assert "2,000,000" in account.text
    assert "billing: 1 Main Street, Springfield" in account.text
    assert "Additional information: Invoice quarterly, please" in account.text
    await ops.http.aclose()


async def test_an_operator_records_purchases_and_opens_any_org(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    ops = await operator(app, ctx, clock)
    url = f"/operator/orgs/{org.org_id}"
    topup = await submit(ops, f"{url}/topups", {"inference_tokens": "2000000", "reference": "T1"})
    assert "Recorded: topup of 2,000,000 inference tokens" in topup.text
    again = await submit(ops, f"{url}/topups", {"inference_tokens": "2000000", "reference": "T1"})
    assert again.status_code == 400
    assert "already recorded" in again.text
    odd = await submit(ops, f"{url}/subscriptions", {"inference_tokens": "1500000"})
    assert odd.status_code == 400
    listing = (await ops.http.get("/operator")).text
    assert f'href="/org?org={org.org_id}"' in listing
    for path in ("/org", "/org/stats", "/org/activity", "/org/requests"):
        assert (await ops.http.get(f"{path}?org={org.org_id}")).status_code == 200, path
    unchosen = await ops.http.get("/org")
    assert unchosen.status_code == 400
    assert 'href="/operator"' in unchosen.text
    await ops.http.aclose()


async def test_an_operator_resets_mfa_and_unlinks_a_card_by_email(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    ops = await operator(app, ctx, clock)
    user_id = await add_user(ctx, "lost@example.com")
    async with new_client(app) as http:
        await enrol_mfa(await sign_in(http, "lost@example.com"), clock)
    reset = await submit(ops, "/operator/users/reset-mfa", {"email": "lost@example.com"})
    assert "Two-factor authentication reset for lost@example.com" in reset.text
    me = await profile.me(ctx, Principal(user_id, False, False, "session"))
    assert me["mfa_enabled"] is False
    unlinked = await submit(ops, "/operator/users/unlink-cac", {"email": "lost@example.com"})
    assert "Certificate unlinked" in unlinked.text
    missing = await submit(ops, "/operator/users/reset-mfa", {"email": "who@example.com"})
    assert missing.status_code == 404
    assert "No account is registered" in missing.text  # a sentence on the page
    await ops.http.aclose()
