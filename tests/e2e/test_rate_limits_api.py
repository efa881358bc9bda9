"""An admin sets per-member rate limits; the gateway then answers 429 with Retry-After."""

from __future__ import annotations

import openai
import pytest
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.api_client import enrol_mfa, new_client, sign_in
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.factories import add_org
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT

__all__ = ["fake", "gateway"]
HELLO = [{"role": "user", "content": "hi"}]


async def test_a_member_over_the_per_minute_limit_gets_429_with_retry_after(
    gateway: FastAPI, ctx: Context, clock: FixedClock, fake: FakeUpstream
) -> None:
    org = await add_org(ctx)
    url = f"/api/orgs/{org.org_id}/rate-limits"
    async with new_client(gateway) as http:
        admin = await enrol_mfa(await sign_in(http, org.admin_emails[0]), clock)
        refused = await http.put(url, json={"requests_per_minute": 0}, headers=admin.headers())
        assert refused.status_code == 400
        saved = await http.put(url, json={"requests_per_minute": 2}, headers=admin.headers())
        assert saved.json() == {"requests_per_minute": 2, "tokens_per_minute": None}
    key = await key_for(ctx, org.member_ids[0])
    async with openai_client(gateway, key) as member:
        for _ in range(2):
            await member.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)
        with pytest.raises(openai.RateLimitError) as caught:
            await member.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=5)
    assert caught.value.response.headers["Retry-After"].isdigit()
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert len(fake.requests) == 2
