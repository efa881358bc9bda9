"""Anthropic's Messages API refusing, in Anthropic's error shape: a bad or missing key, a
malformed block, a server tool, the cap, what the model cannot do, an upstream failing whole or
midway, a body over the limit; nothing is held or charged for what was refused."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.store.models import UsageEvent
from tests.e2e.gateway_fixtures import anthropic_client, key_for
from tests.e2e.test_gateway_messages import (
    HELLO,
    NOW,
    error_of,
    fake,
    gateway,
    member,
    used_and_held,
)
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, PRICED, add_member
from tests.security.test_body_limit import small_limit

__all__ = ["fake", "gateway", "member", "small_limit"]


@pytest.mark.parametrize("key", ["qm-not-a-key", None])
async def test_a_bad_or_missing_key_is_401_in_anthropics_shape(
    gateway: FastAPI, fake: FakeUpstream, key: str | None
) -> None:
    headers = {"x-api-key": key} if key else {}
    body = {"model": CHAT, "messages": HELLO, "max_tokens": 50}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post("https://qm.test/v1/messages", json=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["type"] == "error"
    assert answer.json()["error"]["type"] == "authentication_error"
    assert fake.requests == []


async def test_the_sdk_raises_its_authentication_error(gateway: FastAPI) -> None:
    async with anthropic_client(gateway, auth_token="qm-not-a-key") as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model=CHAT, messages=HELLO, max_tokens=50)
    assert error_of(caught.value)["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (
            [{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}],
            "messages[0].content[0].source.data",
        ),
        ([{"type": "text", "text": "hi", "colour": "red"}], "messages[0].content[0].colour"),
        ([{"type": "video", "url": "https://x.test/v.mp4"}], "messages[0].content[0]"),
    ],
)
async def test_a_malformed_block_is_400_naming_it_and_nothing_is_held(
    gateway: FastAPI,
    ctx: Context,
    fake: FakeUpstream,
    member: tuple[int, str],
    content: list[dict[str, Any]],
    param: str,
) -> None:
    user_id, key = member
    async with anthropic_client(gateway, api_key=key) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                model=PRICED,
                messages=[{"role": "user", "content": content}],  # type: ignore[misc]
                max_tokens=50,
            )
    error = error_of(caught.value)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["message"].startswith(f"{param}: ")
    assert fake.requests == []
    assert await used_and_held(ctx, user_id) == (0, 0)
    async with ctx.uow.begin(write=False) as tx:
        assert await tx.session.scalar(select(func.count()).select_from(UsageEvent)) == 0


async def test_a_server_tool_is_refused_by_its_field(
    gateway: FastAPI, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    async with anthropic_client(gateway, api_key=member[1]) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                model=PRICED,
                messages=HELLO,
                max_tokens=50,
                tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
            )
    assert error_of(caught.value)["param"] == "tools[0].type"
    assert "server tools" in error_of(caught.value)["message"]
    assert fake.requests == []


async def test_over_the_cap_is_a_rate_limit_error_with_what_is_left(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    added = await add_member(ctx, inference_cap=100)
    async with anthropic_client(gateway, api_key=await key_for(ctx, added.user_id)) as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(model=PRICED, messages=HELLO, max_tokens=500)
    error = error_of(caught.value)
    assert (error["type"], error["code"], error["tokens_left"]) == (
        "rate_limit_error",
        "insufficient_quota",
        100,
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("asked", "param"),
    [
        ({"tools": [NOW]}, "tools"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "https://x.test/a.png"},
                            },
                        ],
                    }
                ]
            },
            "messages[0].content[1]",
        ),
    ],
)
async def test_what_the_model_cannot_do_is_refused_by_the_callers_field(
    gateway: FastAPI,
    ctx: Context,
    fake: FakeUpstream,
    member: tuple[int, str],
    asked: dict[str, Any],
    param: str,
) -> None:
    async with anthropic_client(gateway, api_key=member[1]) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(
                **{"model": CHAT, "messages": HELLO, "max_tokens": 50, **asked}
            )
    error = error_of(caught.value)
    assert (error["code"], error["param"]) == ("unsupported_parameter", param)
    assert f"({param})" in error["message"]
    assert fake.requests == []
    assert await used_and_held(ctx, member[0]) == (0, 0)


async def test_an_upstream_failure_is_an_api_error_and_nothing_is_charged(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    fake.error_status = 500
    async with anthropic_client(gateway, api_key=member[1]) as client:
        with pytest.raises(anthropic.InternalServerError) as caught:
            await client.messages.create(model=CHAT, messages=HELLO, max_tokens=50)
    assert caught.value.status_code == 502
    assert error_of(caught.value)["type"] == "api_error"
    assert await used_and_held(ctx, member[0]) == (0, 0)
    assert await check.check(ctx) == []


async def test_a_stream_cut_midway_ends_with_an_error_event_and_charges_what_was_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, member: tuple[int, str]
) -> None:
    fake.stall_after_chunks, fake.stall_s = 2, 2.0  # past the upstream's 0.5 s read timeout
    body = {"model": CHAT, "messages": HELLO, "max_tokens": 50, "stream": True}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post(
            "https://qm.test/v1/messages", json=body, headers={"x-api-key": member[1]}
        )
    names = re.findall(r"^event: (\w+)$", answer.text, re.MULTILINE)
    assert names[-1] == "error"
    assert "message_stop" not in names
    assert '"type":"timeout_error"' in answer.text.rsplit("event: error", 1)[1]
    used, held = await used_and_held(ctx, member[0])
    assert (used > 0, held) == (True, 0)  # the prompt and the two pieces sent, counted here
    assert await check.check(ctx) == []


async def test_a_body_over_the_limit_is_request_too_large(
    gateway: FastAPI, fake: FakeUpstream, member: tuple[int, str], small_limit: int
) -> None:
    long = [{"role": "user", "content": "x" * 2 * small_limit}]
    async with anthropic_client(gateway, api_key=member[1]) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(model=CHAT, messages=long, max_tokens=50)  # type: ignore[arg-type]
    assert caught.value.status_code == 413
    assert error_of(caught.value)["type"] == "request_too_large"
    assert fake.requests == []


async def test_other_routes_keep_openais_error_shape(gateway: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway)) as http:
        answer = await http.post("https://qm.test/v1/chat/completions", json={})
    assert answer.status_code == 401
    assert set(answer.json()) == {"error"}
