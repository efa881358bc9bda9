"""The gateway through the official `openai` client: metering, refusals, upstream failures."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI

from quartermaster.app import create_app
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services.context import Context
from quartermaster.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
HELLO = [{"role": "user", "content": "Say hello"}]


async def _member_key(ctx: Context, **caps: int) -> tuple[int, str]:
    member = await add_member(
        ctx,
        inference_cap=caps.get("inference", 100_000),
        training_cap=caps.get("training", 100_000),
    )
    return member.user_id, await key_for(ctx, member.user_id)


async def test_a_chat_is_answered_and_charged_what_the_upstream_reports(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        answer = await client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=50)
    assert answer.choices[0].message.content == fake.reply
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, len(fake.chunks))
    assert answer.usage.model_extra == {"tokens_charged": 11 + len(fake.chunks)}
    used, reserved = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    assert (used, reserved) == (11 + len(fake.chunks), 0)  # the seeded chat model rates 1 and 1


async def test_a_streamed_chat_reports_usage_and_is_charged_once(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        stream = await client.chat.completions.create(
            model=CHAT,
            messages=HELLO,
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == fake.reply
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11 + len(fake.chunks)
    assert chunks[-1].usage.model_extra == {"tokens_charged": 11 + len(fake.chunks)}
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}
    used, reserved = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    assert (used, reserved) == (11 + len(fake.chunks), 0)


async def test_without_upstream_usage_the_gateway_counts_locally(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    fake.report_usage = False
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        stream = await client.chat.completions.create(
            model=CHAT, messages=HELLO, max_tokens=50, stream=True
        )
        _ = [chunk async for chunk in stream]
    used, reserved = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    assert reserved == 0
    assert used > 0


async def test_over_the_cap_is_refused_with_what_is_left_and_nothing_is_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    _, key = await _member_key(ctx, inference=100)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=500)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "insufficient_quota"
    assert error["tokens_left"] == 100
    assert fake.requests == []


async def test_a_banned_member_is_refused_before_any_hold(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    member = await add_member(ctx, inference_cap=100_000, banned=True)
    key = await key_for(ctx, member.user_id)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.PermissionDeniedError, match="banned"):
            await client.chat.completions.create(model=CHAT, messages=HELLO)
    assert fake.requests == []


async def test_a_bad_key_is_401(gateway: FastAPI) -> None:
    async with openai_client(gateway, "qm-not-a-key") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"max_tokens": 100_000}, "max_tokens"), ({"model": "no-such-model"}, "model")],
)
async def test_bad_requests_name_the_field(
    gateway: FastAPI, ctx: Context, kwargs: dict[str, object], param: str
) -> None:
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(**{"model": CHAT, "messages": HELLO, **kwargs})  # type: ignore[call-overload]
    assert caught.value.status_code in (400, 404)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == param
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)


async def test_an_upstream_failure_is_502_and_releases_the_hold(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    fake.error_status = 500
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model=CHAT, messages=HELLO)
    assert caught.value.status_code == 502
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)


async def test_a_stalled_upstream_is_cut_off_with_504(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    fake.stall_s = 2.0
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT, messages=HELLO)
    assert caught.value.status_code == 504
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)


async def test_a_stream_that_stalls_midway_ends_with_an_error_and_charges_the_part_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    fake.stall_s, fake.stall_after_chunks = 2.0, 2
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        stream = await client.chat.completions.create(model=CHAT, messages=HELLO, stream=True)
        received: list[str] = []

        async def read_all() -> None:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError, match="upstream"):
            await read_all()
    assert "".join(received) == "".join(fake.chunks[:2])
    used, reserved = await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"))
    assert reserved == 0
    assert used > 0


async def test_persona_goes_first_as_a_system_message(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    _, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        await client.chat.completions.create(
            model=CHAT, messages=HELLO, extra_body={"persona": "You are terse."}
        )
    assert fake.bodies()[0]["messages"][0] == {"role": "system", "content": "You are terse."}


async def test_embeddings_are_metered_as_training_tokens(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        result = await client.embeddings.create(model=EMBEDDING, input=["one two", "three"])
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.model_extra == {"tokens_charged": 2}
    period = ctx.clock.now().strftime("%Y-%m")
    used, reserved = await counter(ctx, user_id, period, "training")
    assert reserved == 0
    assert used == 2  # 3 tokens × the seeded training rate 0.5, rounded up
    assert await counter(ctx, user_id, period) == (0, 0)


async def test_models_lists_what_the_gateway_serves(gateway: FastAPI, ctx: Context) -> None:
    _, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        names = sorted([model.id async for model in client.models.list()])
    assert names == sorted([CHAT, EMBEDDING])


async def test_tokenize_counts_and_prices_a_text(gateway: FastAPI, ctx: Context) -> None:
    _, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        response = await client.post(
            "/../api/tokenize", cast_to=object, body={"model": CHAT, "text": "hello world"}
        )
    assert isinstance(response, dict)
    assert response["tokens"] == 2
    assert response["platform_tokens"] == 2
    assert response["worst_case_platform_tokens"] == 2 + 512
    assert json.dumps(response)


async def test_metered_calls_fail_closed_when_the_database_is_down(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        secret_key=TEST_SECRET,
        data_dir=tmp_path,
    )
    app = create_app(settings, providers=ProviderRegistry({}))
    async with app.router.lifespan_context(app), openai_client(app, "qm-any-key") as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT, messages=HELLO)
    assert caught.value.status_code == 503
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "database_unavailable"


@pytest.mark.parametrize(
    ("upstream_status", "status", "code"),
    [
        (400, 400, "upstream_rejected"),
        (401, 502, "upstream_misconfigured"),
        (404, 502, "upstream_misconfigured"),
        (429, 429, "upstream_rate_limited"),
    ],
)
async def test_upstream_refusals_are_blamed_on_whoever_can_fix_them(
    gateway: FastAPI,
    ctx: Context,
    fake: FakeUpstream,
    upstream_status: int,
    status: int,
    code: str,
) -> None:
    fake.error_status = upstream_status
    user_id, key = await _member_key(ctx)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=CHAT, messages=HELLO)
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == code
    assert await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m")) == (0, 0)
