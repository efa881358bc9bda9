"""What the fuzzer found, kept as plain regression tests on both databases: ids no database
column can hold, an operator naming an organization that does not exist, and a payment
reference recorded twice are refused with a 4xx that says why — never a 500, never a 503 that
blames the database."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.api_client import Browser, enrol_mfa, new_client, sign_in
from tests.factories import add_org, add_user
from tests.fakes.clock import FixedClock

HUGE = [2**31, 2**63, 2**70]


async def _operator(http: httpx.AsyncClient, ctx: Context, clock: FixedClock) -> Browser:
    await add_user(ctx, "ops@example.com", operator=True)
    return await enrol_mfa(await sign_in(http, "ops@example.com"), clock)


@pytest.mark.parametrize("number", HUGE)
async def test_ids_out_of_any_columns_range_are_a_4xx(
    app: FastAPI, ctx: Context, clock: FixedClock, number: int
) -> None:
    async with new_client(app) as http:
        await _operator(http, ctx, clock)
        for url in (
            f"/api/orgs/{number}/exports/activity.csv",
            f"/api/orgs/{number}/members",
            f"/api/orgs/{number}",
            f"/api/datasets/{number}",
        ):
            response = await http.get(url)
            assert response.status_code in (400, 404), (url, response.text)
            assert response.json()["error"]["message"]


async def test_an_operator_naming_a_missing_organization_gets_404(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    missing = org.org_id + 1000
    async with new_client(app) as http:
        operator = await _operator(http, ctx, clock)
        for method, url, body in (
            ("GET", f"/api/orgs/{missing}/rate-limits", None),
            ("PUT", f"/api/orgs/{missing}/rate-limits", {"requests_per_minute": 5}),
            ("PUT", f"/api/orgs/{missing}/models", {"models": None}),
        ):
            response = await http.request(method, url, json=body, headers=operator.headers())
            assert response.status_code == 404, (method, url, response.text)
            assert response.json()["error"]["message"] == "no such organization"


async def test_a_payment_reference_recorded_twice_is_a_409(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    payer = await add_user(ctx, "payer@example.com")
    async with new_client(app) as http:
        operator = await _operator(http, ctx, clock)
        await operator.post(f"/api/operator/users/{payer}/plan", json={"plan": "plus"})
        url = f"/api/operator/users/{payer}/plan-payments"
        body = {"first_period": "2026-11", "amount": "20", "reference": "INV-7"}
        first, again = [await operator.post(url, json=body) for _ in range(2)]
    assert first.status_code == 201, first.text
    assert again.status_code == 409, again.text
    assert again.json()["error"]["message"] == "reference 'INV-7' is already recorded"
