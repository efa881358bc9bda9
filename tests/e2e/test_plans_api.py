"""A person outside any enterprise manages their plan through the API, with online payment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from quartermaster.app import create_app
from quartermaster.services.context import Context
from quartermaster.settings import Settings
from tests.e2e.api_client import new_client, sign_in
from tests.factories import add_user
from tests.fakes.clock import FixedClock


@pytest.fixture
async def shop(settings: Settings, clock: FixedClock, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The app with the offline payment provider, which approves every charge."""
    application = create_app(settings.model_copy(update={"payments": "offline"}), clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def test_choose_pay_and_refill_through_the_api(shop: FastAPI, ctx: Context) -> None:
    await add_user(ctx, "solo@example.com")
    async with new_client(shop) as http:
        browser = await sign_in(http, "solo@example.com")
        offer = [plan["name"] for plan in (await http.get("/api/plans")).json()]
        assert offer == ["free", "plus", "pro"]
        window = (await http.get("/api/me/plan")).json()
        assert (window["plan"], window["tokens"]["inference"]["cap"]) == ("free", 200_000)
        chosen = await browser.post("/api/me/plan", json={"plan": "plus", "term": "yearly"})
        assert chosen.json() == {"plan": "plus", "term": "yearly"}
        unpaid = (await http.get("/api/me/plan")).json()
        assert "unpaid" in unpaid["unpaid"]
        paid = (await browser.post("/api/me/plan/pay")).json()
        assert paid == {"from": "2026-11", "to": "2027-10", "amount": "200.00"}
        refill = await browser.post(
            "/api/me/plan/refills", json={"kind": "training", "tokens": 1_000_000}
        )
        assert refill.status_code == 201
        assert refill.json()["price"] == "45.00"
        window = (await http.get("/api/me/plan")).json()
    assert window["unpaid"] is None
    assert window["tokens"]["training"]["cap"] == 2_000_000
    assert window["tokens"]["inference"] == {"cap": 2_000_000, "used": 0, "left": 2_000_000}


async def test_with_manual_payments_self_service_is_402_with_instructions(
    app: FastAPI, ctx: Context
) -> None:
    await add_user(ctx, "cash@example.com")
    async with new_client(app) as http:
        browser = await sign_in(http, "cash@example.com")
        refused = await browser.post(
            "/api/me/plan/refills", json={"kind": "inference", "tokens": 2_000_000}
        )
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "payments_manual"
