"""Each of the gateway's chat routes books its calls under its own name, so the statistics by
route say which API the tokens went through."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import anthropic_client, fake, gateway, key_for, openai_client
from tests.integration.ledger_fixtures import CHAT, add_member

__all__ = ["fake", "gateway"]
SAY = [{"role": "user", "content": "Say hello"}]


async def test_every_chat_route_books_as_itself(gateway: FastAPI, ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=100_000)
    key = await key_for(ctx, member.user_id)
    async with openai_client(gateway, key) as client:
        await client.chat.completions.create(model=CHAT, messages=SAY, max_tokens=10)
        await client.responses.create(model=CHAT, input="Say hello", max_output_tokens=10)
        await client.completions.create(model=CHAT, prompt="Say hello", max_tokens=10)
    async with anthropic_client(gateway, api_key=key) as claude:
        await claude.messages.create(model=CHAT, messages=SAY, max_tokens=10)
    async with ctx.uow.begin(write=False) as tx:
        routes = list(await tx.session.scalars(select(UsageEvent.route).order_by(UsageEvent.id)))
    assert routes == ["chat.completions", "responses", "completions", "messages"]
    assert await check.check(ctx) == []
