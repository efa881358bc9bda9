"""The OpenAI-compatible HTTP provider against the in-process fake upstream: no network."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from quartermaster.providers import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    OpenAIHTTPProvider,
    ProviderBadResponse,
    ProviderConfigError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    TokenUsage,
    UpstreamConfig,
)
from tests.fakes.upstream import FakeUpstream, fake_vector

REQUEST = ChatRequest(
    messages=[ChatMessage("system", "Be brief."), ChatMessage("user", "Hi", name="ann")],
    max_tokens=16,
    temperature=0.5,
    stop=["\n\n"],
)
MakeProvider = Callable[..., OpenAIHTTPProvider]


@pytest.fixture
async def make_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[MakeProvider]:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", "sk-fake")
    made: list[OpenAIHTTPProvider] = []

    def make(fake: FakeUpstream, **settings: Any) -> OpenAIHTTPProvider:
        settings = {"base_url": "http://upstream.test/v1", "retry_backoff_s": 0} | settings
        config = UpstreamConfig(name="fake", api_key_env="FAKE_UPSTREAM_KEY", **settings)
        provider = OpenAIHTTPProvider(config, "fake-model", transport=fake.transport())
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


async def collect(stream: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    return [chunk async for chunk in stream]


async def test_chat_returns_the_answer_and_the_upstream_usage(make_provider: MakeProvider) -> None:
    fake = FakeUpstream(reply="Hi there", prompt_tokens=9)
    result = await make_provider(fake).chat(REQUEST)
    assert (result.content, result.finish_reason) == ("Hi there", "stop")
    assert result.usage == TokenUsage(prompt_tokens=9, completion_tokens=2)
    body = fake.bodies()[0]
    assert body["model"] == "fake-model"
    assert body["messages"][1] == {"role": "user", "content": "Hi", "name": "ann"}
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (16, 0.5, ["\n\n"])
    assert "stream_options" not in body
    assert fake.requests[0].headers["authorization"] == "Bearer sk-fake"
    assert fake.requests[0].url.path == "/v1/chat/completions"


async def test_an_azure_style_upstream_gets_its_path_query_header_and_key(
    make_provider: MakeProvider,
) -> None:
    fake = FakeUpstream()
    provider = make_provider(
        fake,
        base_url="https://example.openai.azure.com/openai/deployments/gpt-4o/",
        query={"api-version": "2024-10-21"},
        headers={"X-Team": "blue"},
        auth_header="api-key",
    )
    await provider.chat(REQUEST)
    await provider.embed(["one"])
    chat, embed = fake.requests
    assert str(chat.url) == (
        "https://example.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
        "?api-version=2024-10-21"
    )
    assert embed.url.path == "/openai/deployments/gpt-4o/embeddings"
    assert (chat.headers["api-key"], chat.headers["x-team"]) == ("sk-fake", "blue")
    assert "authorization" not in chat.headers
    assert chat.headers["content-type"] == "application/json"
    assert int(chat.headers["content-length"]) == len(chat.content)


async def test_the_operators_headers_replace_the_defaults_whatever_their_case(
    make_provider: MakeProvider,
) -> None:
    fake = FakeUpstream()
    await make_provider(fake, headers={"user-agent": "acme-gateway/2"}).chat(REQUEST)
    sent = fake.requests[0].headers
    assert sent.get_list("user-agent") == ["acme-gateway/2"]
    assert sent.get_list("content-type") == ["application/json"]


async def test_chat_without_usage_reports_none(make_provider: MakeProvider) -> None:
    result = await make_provider(FakeUpstream(report_usage=False)).chat(REQUEST)
    assert result.usage is None


async def test_stream_asks_for_usage_and_ends_with_it(make_provider: MakeProvider) -> None:
    fake = FakeUpstream(reply="one two three", prompt_tokens=5)
    chunks = await collect(make_provider(fake).stream_chat(REQUEST))
    assert [c.delta for c in chunks[:-1]] == ["one", " two", " three", ""]
    assert not any(c.is_final for c in chunks[:-1])
    finish = chunks[-2].raw
    assert finish is not None
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    final = chunks[-1]
    assert (final.finish_reason, final.usage) == ("stop", TokenUsage(5, 3))
    assert final.raw is not None
    assert final.raw["usage"]["prompt_tokens"] == 5  # the event that carried it, as it came
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}


async def test_stream_without_usage_ends_with_none(make_provider: MakeProvider) -> None:
    fake = FakeUpstream(reply="one two", report_usage=False)
    chunks = await collect(make_provider(fake).stream_chat(REQUEST))
    assert "".join(c.delta for c in chunks) == "one two"
    assert chunks[-1].is_final
    assert chunks[-1].usage is None


@pytest.mark.parametrize("status", [400, 401, 404, 429])
async def test_client_errors_are_rejections_with_the_upstream_status(
    make_provider: MakeProvider, status: int
) -> None:
    fake = FakeUpstream(error_status=status, error_message="model not found")
    with pytest.raises(ProviderRejected) as caught:
        await make_provider(fake).chat(REQUEST)
    assert (caught.value.status, caught.value.message) == (status, "model not found")
    assert caught.value.upstream == "fake"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_bad_responses_and_not_retried(
    make_provider: MakeProvider, status: int
) -> None:
    fake = FakeUpstream(error_status=status)
    with pytest.raises(ProviderBadResponse) as caught:
        await collect(make_provider(fake).stream_chat(REQUEST))
    assert caught.value.status == status
    assert len(fake.requests) == 1


async def test_a_stream_cut_before_done_is_a_bad_response(make_provider: MakeProvider) -> None:
    with pytest.raises(ProviderBadResponse, match=r"ended before \[DONE\]"):
        await collect(make_provider(FakeUpstream(cut_stream=True)).stream_chat(REQUEST))


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b'{"choices": []}'])
async def test_a_body_that_is_not_the_protocol_is_a_bad_response(
    make_provider: MakeProvider, body: bytes
) -> None:
    with pytest.raises(ProviderBadResponse, match="malformed"):
        await make_provider(FakeUpstream(raw_body=body)).chat(REQUEST)


async def test_connect_failures_are_retried_then_succeed(make_provider: MakeProvider) -> None:
    fake = FakeUpstream(connect_failures=2)
    result = await make_provider(fake, connect_retries=2).chat(REQUEST)
    assert result.content == fake.reply
    assert fake.connect_attempts == 3


async def test_connect_failures_past_the_retries_are_unavailable(
    make_provider: MakeProvider,
) -> None:
    fake = FakeUpstream(connect_failures=10)
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        await make_provider(fake, connect_retries=2).chat(REQUEST)
    assert fake.connect_attempts == 3
    assert fake.requests == []


async def test_a_hanging_upstream_is_cut_off_by_the_read_timeout(
    make_provider: MakeProvider,
) -> None:
    fake = FakeUpstream(stall_s=30)
    provider = make_provider(fake, read_timeout_s=0.2, connect_timeout_s=0.1)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await provider.chat(REQUEST)
    assert time.monotonic() - started < 2
    assert fake.connect_attempts == 1


async def test_a_stream_that_stalls_midway_times_out_after_its_first_chunks(
    make_provider: MakeProvider,
) -> None:
    fake = FakeUpstream(reply="a b c d", stall_s=30, stall_after_chunks=2)
    provider = make_provider(fake, read_timeout_s=0.2)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in provider.stream_chat(REQUEST):
            received.append(chunk.delta)

    with pytest.raises(ProviderTimeout):
        await consume()
    assert received == ["a", " b"]


async def test_embed_returns_vectors_in_input_order(make_provider: MakeProvider) -> None:
    texts = ["first text", "second", "third one here"]
    result = await make_provider(FakeUpstream()).embed(texts)
    assert result.vectors == [fake_vector(text) for text in texts]
    assert result.usage == TokenUsage(prompt_tokens=6)


async def test_the_caller_body_is_forwarded_with_the_upstream_policy_applied_last(
    make_provider: MakeProvider,
) -> None:
    """An operator can force a field (`store = false`) or take one out for one upstream,
    whatever the caller sent; everything else arrives as the caller wrote it."""
    fake = FakeUpstream()
    provider = make_provider(fake, force={"store": False}, remove=("service_tier",))
    wire = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "store": True,
        "service_tier": "priority",
        "tools": [{"type": "function", "function": {"name": "now"}}],
    }
    await provider.chat(ChatRequest([ChatMessage("user", "Hi")], wire=wire))
    (sent,) = fake.bodies()
    assert sent == {
        "messages": wire["messages"],
        "tools": wire["tools"],
        "store": False,
        "model": "fake-model",
        "stream": False,
    }


def test_an_upstream_policy_cannot_touch_what_the_gateway_sets() -> None:
    with pytest.raises(ProviderConfigError, match="cannot name model, stream or messages"):
        UpstreamConfig(name="x", base_url="http://x.test", force={"model": "other"})


COMPLETION = ChatRequest((), max_tokens=16, temperature=0.5, prompts=("Once upon", "In the"))


async def test_a_completion_goes_to_the_upstreams_completions_and_reads_the_text(
    make_provider: MakeProvider,
) -> None:
    """Its answer holds `text`, not a message: the local count falls back on it too."""
    fake = FakeUpstream(reply="a time", prompt_tokens=4)
    result = await make_provider(fake).chat(COMPLETION)
    assert fake.requests[0].url.path == "/v1/completions"
    assert fake.bodies()[0] == {
        "prompt": ["Once upon", "In the"],
        "max_tokens": 16,
        "temperature": 0.5,
        "model": "fake-model",
        "stream": False,
    }
    assert result.content == "a timea time"  # both answers' text, for a local count
    assert result.usage == TokenUsage(4, 4)
    assert result.raw is not None
    assert result.raw["object"] == "text_completion"


async def test_a_streamed_completion_gives_each_pieces_text(make_provider: MakeProvider) -> None:
    fake = FakeUpstream(reply="a long time", prompt_tokens=2)
    chunks = await collect(make_provider(fake).stream_chat(COMPLETION))
    assert [c.delta for c in chunks] == ["a", " long", " time", "", ""]
    assert chunks[-1].usage == TokenUsage(2, 3)
    assert fake.requests[0].url.path == "/v1/completions"
    assert fake.bodies()[0]["stream_options"] == {"include_usage": True}
