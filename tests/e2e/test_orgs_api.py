"""The enterprise API over HTTP as people use it: sessions with CSRF, MFA for admins and
operators, a real race between two admins, and a member's token request end to end."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.api_client import enrol_mfa, new_client, sign_in
from tests.factories import CAP, add_org, add_user
from tests.fakes.clock import FixedClock


async def test_operator_provisions_and_a_refusal_names_every_problem(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    await add_user(ctx, "ops@example.com", operator=True)
    ann, bob = await add_user(ctx, "ann@example.com"), await add_user(ctx, "bob@example.com")
    async with new_client(app) as http:
        operator = await enrol_mfa(await sign_in(http, "ops@example.com"), clock)
        body = {
            "name": "ABC Corp",
            "member_emails": ["ann@example.com", "bob@example.com"],
            "admin_emails": ["ann@example.com"],
            "inference_tokens": 2_000_000,
            "billing_address": "1 Main Street, Springfield",
            "additional_information": "Invoice quarterly",
        }
        unaddressed = {k: v for k, v in body.items() if k != "billing_address"}
        missing = await operator.post("/api/operator/orgs", json=unaddressed)
        assert missing.status_code == 400
        assert missing.json()["error"]["param"] == "billing_address"
        refused = await operator.post(
            "/api/operator/orgs",
            json={**body, "admin_emails": [], "inference_tokens": 1, "billing_address": ""},
        )
        assert refused.status_code == 400
        assert len(refused.json()["error"]["problems"]) == 4  # address, admin, bundle, minimum
        assert (await http.get("/api/operator/orgs")).json() == []
        no_csrf = await http.post("/api/operator/orgs", json=body)
        assert no_csrf.json()["error"]["code"] == "csrf_failed"
        made = await operator.post("/api/operator/orgs", json=body)
        assert made.status_code == 201, made.text
        org_id = made.json()["org_id"]
        topup = await operator.post(
            f"/api/operator/orgs/{org_id}/topups", json={"inference_tokens": 2_000_000}
        )
        assert topup.json()["price"] == "90.00"
        summary = (await http.get(f"/api/orgs/{org_id}")).json()
        members = (await http.get(f"/api/orgs/{org_id}/members")).json()
    assert (summary["tokens_purchased"], summary["members"]) == (4_000_000, 2)
    assert (summary["billing_address"], summary["additional_information"]) == (
        "1 Main Street, Springfield",
        "Invoice quarterly",
    )
    assert {r["user_id"] for r in members} == {ann, bob}


async def test_two_admins_racing_on_one_row_one_wins_and_one_gets_409(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx, admins=2)
    url = f"/api/orgs/{org.org_id}/members/{org.member_ids[0]}/allocation"
    async with new_client(app) as a, new_client(app) as b:
        first = await enrol_mfa(await sign_in(a, org.admin_emails[0]), clock)
        second = await enrol_mfa(await sign_in(b, org.admin_emails[1]), clock)
        version = (await a.get(f"/api/orgs/{org.org_id}/members")).json()[2]["version"]
        edits = [
            first.http.put(url, headers=first.headers(), json=_caps(600_000, version)),
            second.http.put(url, headers=second.headers(), json=_caps(700_000, version)),
        ]
        answers = await asyncio.gather(*edits)
        assert sorted(r.status_code for r in answers) == [200, 409]
        winner = next(r for r in answers if r.status_code == 200).json()
        loser = next(r for r in answers if r.status_code == 409).json()["error"]
        assert loser["current"] == winner
        rows = (await a.get(f"/api/orgs/{org.org_id}/members")).json()
    assert rows[2]["max_inference_tokens"] == winner["max_inference_tokens"]


def _caps(inference: int, version: int) -> dict[str, int]:
    return {"max_inference_tokens": inference, "max_training_tokens": CAP[1], "version": version}


async def test_a_member_asks_and_sees_the_admins_decision(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    async with new_client(app) as a, new_client(app) as m:
        admin = await enrol_mfa(await sign_in(a, org.admin_emails[0]), clock)
        asker = await sign_in(m, org.member_emails[0])
        rule = {"enabled": True, "max_tokens": 50_000, "max_pool_pct": "10"}
        assert (
            await admin.http.put(
                f"/api/orgs/{org.org_id}/auto-approval", headers=admin.headers(), json=rule
            )
        ).status_code == 200
        small = await asker.post(
            "/api/me/token-requests", json={"amount": 50_000, "reason": "demo"}
        )
        assert small.json()["status"] == "approved"
        asked = await asker.post(
            "/api/me/token-requests",
            json={"kind": "inference", "amount": 400_000, "reason": "quarterly report"},
        )
        assert asked.json()["status"] == "pending"
        pending = (await a.get(f"/api/orgs/{org.org_id}/token-requests?status=pending")).json()
        assert [r["reason"] for r in pending] == ["quarterly report"]
        decided = await admin.post(
            f"/api/orgs/{org.org_id}/token-requests/{asked.json()['id']}/approve",
            json={"amount": 300_000, "note": "300k for now"},
        )
        assert decided.status_code == 200, decided.text
        mine = (await m.get("/api/me/token-requests")).json()
    assert [(r["status"], r["approved_amount"]) for r in mine] == [
        ("approved", 300_000),
        ("approved", 50_000),
    ]
    assert mine[0]["decision_note"] == "300k for now"


async def test_a_bad_allocation_is_a_400_that_changes_nothing(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    url = f"/api/orgs/{org.org_id}/members/{org.member_ids[0]}/allocation"
    async with new_client(app) as a:
        admin = await enrol_mfa(await sign_in(a, org.admin_emails[0]), clock)
        low = await admin.http.put(url, headers=admin.headers(), json=_caps(199_999, 2))
        assert low.status_code == 400
        assert "at least 200,000" in low.json()["error"]["message"]
        rows = (await a.get(f"/api/orgs/{org.org_id}/members")).json()
    assert rows[1]["max_inference_tokens"] == CAP[0]
    assert rows[1]["version"] == 2
