"""An organization's model allow-list holds in /v1/models and in every metered call."""

from __future__ import annotations

import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent
from tests.e2e.api_client import enrol_mfa, new_client, sign_in
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.factories import add_org
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING

__all__ = ["fake", "gateway"]


async def test_an_admin_limits_the_models_members_may_use(
    gateway: FastAPI, ctx: Context, clock: FixedClock, fake: FakeUpstream
) -> None:
    org = await add_org(ctx)
    key = await key_for(ctx, org.member_ids[0])
    url = f"/api/orgs/{org.org_id}/models"
    async with new_client(gateway) as http, openai_client(gateway, key) as member:
        admin = await enrol_mfa(await sign_in(http, org.admin_emails[0]), clock)
        assert (await http.get(url)).json() == {"models": None}
        unknown = await http.put(url, json={"models": ["gpt-9"]}, headers=admin.headers())
        assert unknown.status_code == 400
        assert "gpt-9" in unknown.json()["error"]["message"]
        done = await http.put(url, json={"models": [EMBEDDING]}, headers=admin.headers())
        assert done.json() == {"models": [EMBEDDING]}
        assert [m.id async for m in member.models.list()] == [EMBEDDING]
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await member.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "hi"}]
            )
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["code"] == "model_not_allowed"
        assert fake.requests == []
        await http.put(url, json={"models": None}, headers=admin.headers())
        assert sorted([m.id async for m in member.models.list()]) == sorted([CHAT, EMBEDDING])
    async with ctx.uow.begin(write=False) as tx:
        changes = list(
            await tx.session.scalars(
                select(AuditEvent.after).where(AuditEvent.action == "org.models.set")
            )
        )
    assert changes == [{"models": [EMBEDDING]}, {"models": None}]
