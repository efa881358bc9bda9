"""A gateway whose catalog models are served by the fake upstream, and OpenAI's and Anthropic's
clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from fastapi import FastAPI

from quartermaster.app import create_app
from quartermaster.providers.config import UpstreamConfig
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services.context import Context
from quartermaster.services.identity import api_keys
from quartermaster.settings import Settings
from tests.fakes.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member

FAKE_UPSTREAM = UpstreamConfig(
    name="fake",
    base_url="http://upstream.test/v1",
    read_timeout_s=0.5,
    connect_timeout_s=0.5,
    connect_retries=1,
    retry_backoff_s=0.0,
)


def fake_providers(fake: FakeUpstream, config: UpstreamConfig = FAKE_UPSTREAM) -> ProviderRegistry:
    """The catalog's chat and embedding models, both answered by `fake`."""
    transport = fake.transport()
    return ProviderRegistry(
        {
            CHAT: OpenAIHTTPProvider(config, "fake-chat", transport=transport),
            EMBEDDING: OpenAIHTTPProvider(config, "fake-embed", transport=transport),
        }
    )


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def gateway(
    settings: Settings, clock: FixedClock, fake: FakeUpstream, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    async with serving(settings, clock, fake_providers(fake)) as application:
        yield application


@asynccontextmanager
async def serving(
    settings: Settings, clock: FixedClock, providers: ProviderRegistry
) -> AsyncIterator[FastAPI]:
    """The app with `providers`, started and stopped as a server does."""
    application = create_app(settings, clock=clock, providers=providers)
    async with application.router.lifespan_context(application):
        yield application


async def member_with_key(ctx: Context) -> tuple[int, str]:
    """A member with an inference cap of 100,000 and an API key: (user id, key)."""
    added = await add_member(ctx, inference_cap=100_000)
    return added.user_id, await key_for(ctx, added.user_id)


async def key_for(ctx: Context, user_id: int) -> str:
    async with ctx.uow.begin() as tx:
        issued = await api_keys.issue(tx.session, user_id, "test", ctx.clock.now())
        await tx.commit()
    return issued.secret


def openai_client(app: FastAPI, key: str) -> openai.AsyncOpenAI:
    """The official client, unchanged, talking to the app in-process."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return openai.AsyncOpenAI(
        api_key=key, base_url="https://qm.test/v1", http_client=http, max_retries=0
    )


def anthropic_client(
    app: FastAPI, *, api_key: str | None = None, auth_token: str | None = None
) -> anthropic.AsyncAnthropic:
    """Anthropic's official client, unchanged, at the server's root (it adds /v1/messages): the
    key sent as `x-api-key` (`api_key`) or as a bearer token (`auth_token`)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        auth_token=auth_token,
        base_url="https://qm.test",
        http_client=http,
        max_retries=0,
    )
