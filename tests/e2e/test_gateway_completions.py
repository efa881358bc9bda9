"""OpenAI's legacy completions through the official `openai` client: the body reaches the
upstream's /completions as sent, its answer comes back as it came, and the member is charged
exactly what the upstream reported — held first for every answer it may bill, refused by name
when the request is bad, on the one path every chat takes."""

from __future__ import annotations

import math
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from quartermaster.domain.principal import Principal
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.e2e.test_gateway_fidelity import held, usage, used
from tests.e2e.test_hold_bounds import BPE, overruns
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member

__all__ = ["fake", "gateway"]
PROMPT = "Say hello"
"""Two tokens (cl100k_base, the count for the fake upstream's model)."""
TWENTY = " ".join(f"word{i}" for i in range(10))
"""Twenty tokens."""


async def _member(ctx: Context, cap: int = 100_000) -> tuple[int, str]:
    member = await add_member(ctx, inference_cap=cap)
    return member.user_id, await key_for(ctx, member.user_id)


async def _capable(ctx: Context) -> None:
    """The chat model able to do what OpenAI's completion models do."""
    await catalog.update_model(ctx, Principal.command_line(), CHAT, logprobs=True, max_choices=4)


async def test_a_completion_reaches_the_upstreams_completions_as_sent_and_is_charged_its_usage(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member(ctx)
    async with openai_client(gateway, key) as client:
        answer = await client.completions.create(
            model=CHAT,
            prompt=PROMPT,
            max_tokens=20,
            temperature=0.5,
            stop=["\n"],
            logit_bias={"50256": -100},
            user="ann",
            extra_body={"future_field": [1, "x"]},
        )
    assert fake.requests[0].url.path == "/v1/completions"
    assert fake.bodies() == [
        {
            "prompt": PROMPT,
            "max_tokens": 20,
            "temperature": 0.5,
            "stop": ["\n"],
            "logit_bias": {"50256": -100},
            "user": "ann",
            "future_field": [1, "x"],
            "model": "fake-chat",
            "stream": False,
        }
    ]
    assert (answer.object, answer.model, answer.choices[0].text) == (
        "text_completion",
        CHAT,
        fake.reply,
    )
    assert answer.id.startswith("cmpl-")
    charged = 11 + len(fake.chunks)  # what the fake reported, at the model's rates of 1 and 1
    assert answer.usage is not None
    assert answer.usage.model_extra == {"tokens_charged": charged}
    assert await used(ctx, user_id) == charged
    assert await check.check(ctx) == []


async def test_the_upstreams_answer_reaches_the_client_as_it_came(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    """Two prompts with two answers each, log probabilities, a fingerprint, usage details."""
    await _capable(ctx)
    user_id, key = await _member(ctx)
    logprobs = {
        "tokens": ["Hi"],
        "token_logprobs": [-0.1],
        "top_logprobs": [{"Hi": -0.1}],
        "text_offset": [9],
    }
    choices = [
        {"index": i, "text": "Hi", "logprobs": logprobs, "finish_reason": "stop"} for i in range(4)
    ]
    reported = usage(4, 4, prompt_tokens_details={"cached_tokens": 0})
    fake.answer = {
        "id": "cmpl-up",
        "object": "text_completion",
        "created": 7,
        "system_fingerprint": "fp_1",
        "choices": choices,
        "usage": reported,
    }
    async with openai_client(gateway, key) as client:
        answer = await client.completions.create(
            model=CHAT, prompt=[PROMPT, "Say bye"], n=2, logprobs=1, echo=False, max_tokens=5
        )
    assert answer.to_dict() == fake.answer | {
        "id": answer.id,
        "model": CHAT,
        "usage": reported | {"tokens_charged": 8},
    }
    assert await used(ctx, user_id) == 8


async def test_a_streamed_completion_is_text_completion_chunks_and_is_charged_once(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    user_id, key = await _member(ctx)
    async with openai_client(gateway, key) as client:
        stream = await client.completions.create(
            model=CHAT,
            prompt=PROMPT,
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == fake.reply
    assert {(c.object, c.id, c.model) for c in chunks} == {("text_completion", chunks[0].id, CHAT)}
    final = chunks[-1]
    assert (final.choices, final.usage is not None) == ([], True)
    assert final.usage is not None
    assert final.usage.model_extra == {"tokens_charged": 11 + len(fake.chunks)}
    sent = fake.bodies()[0]
    assert (sent["stream"], sent["stream_options"]) == (True, {"include_usage": True})
    assert await used(ctx, user_id) == 11 + len(fake.chunks)
    assert await check.check(ctx) == []


async def test_a_stream_cut_by_the_upstream_ends_with_an_error_and_charges_the_part_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    fake.stall_s, fake.stall_after_chunks = 2.0, 2
    user_id, key = await _member(ctx)
    received: list[str] = []
    async with openai_client(gateway, key) as client:
        stream = await client.completions.create(model=CHAT, prompt=PROMPT, stream=True)

        async def read_all() -> None:
            async for chunk in stream:
                received.append(chunk.choices[0].text)

        with pytest.raises(openai.APIError, match="upstream"):
            await read_all()
    assert "".join(received) == "".join(fake.chunks[:2])
    assert await used(ctx, user_id) > 0
    assert await check.check(ctx) == []


async def test_without_max_tokens_the_upstream_is_told_openais_16_and_16_are_held(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    """An upstream's own default may be far more, or no limit at all (llama.cpp's server):
    the gateway makes OpenAI's default explicit, so the hold bounds the answer anywhere — and
    a member with little left can still make the small call."""
    _, key = await _member(ctx, cap=30)
    async with openai_client(gateway, key) as client:
        answer = await client.completions.create(model=CHAT, prompt=PROMPT)
    assert fake.bodies()[0]["max_tokens"] == 16
    assert await held(ctx, answer.id) == 2 + 16


@pytest.mark.parametrize(
    ("body", "needed"),
    [
        ({}, 2 + 16),
        ({"max_tokens": 10, "n": 3}, 2 + 3 * 10),
        ({"max_tokens": 10, "best_of": 4}, 2 + 4 * 10),
        ({"max_tokens": 10, "n": 2, "best_of": 3}, 2 + 3 * 10),
        ({"prompt": [PROMPT, "Say goodbye"], "max_tokens": 10, "n": 2}, 2 + 2 + 2 * 2 * 10),
        ({"suffix": "The end.", "max_tokens": 10}, 2 + (3 + 3) + 10),
        ({"prompt": TWENTY, "echo": True, "max_tokens": 10}, 20 + 10 * math.ceil(30 / 10)),
    ],
)
async def test_the_hold_counts_every_answer_the_upstream_may_bill(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, body: dict[str, Any], needed: int
) -> None:
    """`n` answers for each prompt, `best_of` candidates when more (all billed), a suffix
    with the markers around it, and an echoed prompt in each answer: a member with 1 token
    left sees what the call would have held."""
    await _capable(ctx)
    _, key = await _member(ctx, cap=1)
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.RateLimitError) as refused:
            await client.post(
                "/completions", body={"model": CHAT, "prompt": PROMPT} | body, cast_to=object
            )
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["tokens_needed"] == needed
    assert fake.requests == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2], [3]]}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "word " * 9000}, "prompt"),
        ({"n": 10_000}, "n"),
        ({"n": 2}, "n"),
        ({"best_of": 100}, "best_of"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"logprobs": 1}, "logprobs"),
        ({"echo": "yes"}, "echo"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
async def test_a_bad_request_is_refused_by_name_before_anything_is_held_or_sent(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, body: dict[str, Any], param: str
) -> None:
    """Missing or token-array prompts, `n` beyond reason or beyond what the catalog says the
    model gives, a limit beyond the model's, log probabilities it does not give."""
    user_id, key = await _member(ctx)
    request = {"model": CHAT, "prompt": PROMPT} | body
    async with openai_client(gateway, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.post(
                "/completions",
                body={name: value for name, value in request.items() if value is not None},
                cast_to=httpx.Response,
            )
    assert refused.value.param == param
    assert fake.requests == []
    assert await used(ctx, user_id) == 0
    assert await check.check(ctx) == []


def _billed_as_openai(body: dict[str, Any]) -> dict[str, Any]:
    """Every answer at its full length, billed as OpenAI has: each candidate of each prompt,
    with the prompt again when it is echoed, and the suffix with the prompt."""
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    n, candidates = body.get("n", 1), max(body.get("n", 1), body.get("best_of", 1))
    limit = body.get("max_tokens", 16)
    choices = [
        {"index": i, "text": " ".join(["ok"] * limit), "logprobs": None, "finish_reason": "length"}
        for i in range(n * len(prompts))
    ]
    counts = [BPE.count(p) + BPE.count(body.get("suffix", "")) for p in prompts]
    echoed = sum(counts) * candidates if body.get("echo") else 0
    completion = candidates * limit * len(prompts) + echoed
    return {
        "object": "text_completion",
        "choices": choices,
        "usage": usage(sum(counts), completion),
    }


async def _complete(client: Any, body: dict[str, Any]) -> None:
    if body.get("stream"):
        stream = await client.completions.create(
            model=CHAT, stream_options={"include_usage": True}, **body
        )
        async for _ in stream:
            pass
    else:
        await client.completions.create(model=CHAT, **body)


async def test_no_completion_billed_as_openai_bills_costs_more_than_its_hold(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    await _capable(ctx)
    user_id, key = await _member(ctx, cap=1_000_000)
    corpus: list[dict[str, Any]] = [
        {"prompt": PROMPT},
        {"prompt": TWENTY, "max_tokens": 7, "echo": True},
        {"prompt": [PROMPT, TWENTY], "max_tokens": 5, "n": 2, "best_of": 3, "echo": True},
        {"prompt": TWENTY, "suffix": "The end.", "max_tokens": 9},
        {"prompt": [TWENTY, PROMPT], "max_tokens": 4, "stream": True},
    ]
    async with openai_client(gateway, key) as client:
        for body in corpus:
            fake.answer = _billed_as_openai(body)
            await _complete(client, body)
    assert len(fake.requests) == len(corpus)
    assert await used(ctx, user_id) > 0
    assert await overruns(ctx) == []
    assert await check.check(ctx) == []
