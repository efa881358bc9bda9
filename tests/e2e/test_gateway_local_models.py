"""The embedded offline models behind the real gateway, as `make run` serves them."""

from __future__ import annotations

import json

import openai
import pytest
from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.gateway_fixtures import anthropic_client, key_for, openai_client
from tests.e2e.test_gateway_fidelity import held
from tests.integration.ledger_fixtures import CHAT, EMBEDDING, add_member
from tests.integration.test_ledger import counter
from tests.integration.test_providers_local import COLOUR


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_local_models_answer_offline_and_are_metered(app: FastAPI, ctx: Context) -> None:
    member = await add_member(ctx, inference_cap=100_000, training_cap=100_000)
    key = await key_for(ctx, member.user_id)
    async with openai_client(app, key) as client:
        answer = await client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=12
        )
        vectors = await client.embeddings.create(model=EMBEDDING, input=["a red apple"])
    assert answer.choices[0].message.content
    assert answer.usage is not None
    assert 0 < answer.usage.completion_tokens <= 12
    assert len(vectors.data[0].embedding) == 384
    period = ctx.clock.now().strftime("%Y-%m")
    assert await counter(ctx, member.user_id, period) == (answer.usage.total_tokens, 0)
    used, _ = await counter(ctx, member.user_id, period, "training")
    assert used > 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_local_model_gives_json_of_a_schema_through_the_client(
    app: FastAPI, ctx: Context
) -> None:
    """`response_format` reaches the embedded model from the official client, seeded."""
    member = await add_member(ctx, inference_cap=100_000)
    async with openai_client(app, await key_for(ctx, member.user_id)) as client:
        answers = [
            await client.chat.completions.create(
                model=CHAT,
                messages=[{"role": "user", "content": "Name a colour, as JSON."}],
                max_tokens=40,
                temperature=1.0,
                seed=5,
                response_format=COLOUR,  # type: ignore[arg-type]
            )
            for _ in range(2)
        ]
    first, again = (answer.choices[0].message.content or "" for answer in answers)
    assert list(json.loads(first)) == ["colour"]
    assert again == first  # the same seed, the same sampled answer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "now"}}]}, "tools"),
        ({"logit_bias": {"42": 5}}, "logit_bias"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"modalities": ["text", "audio"]}, "modalities"),
    ],
)
async def test_the_local_model_refuses_what_it_would_otherwise_ignore(
    app: FastAPI, ctx: Context, extra: dict[str, object], param: str
) -> None:
    """SmolLM2 cannot call tools or bias logits: a 400 naming the field and the model, nothing
    held — never an answer that silently did without them."""
    member = await add_member(ctx, inference_cap=100_000)
    async with openai_client(app, await key_for(ctx, member.user_id)) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "Hi"}], extra_body=extra
            )
        fine = await client.chat.completions.create(
            model=CHAT,
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=4,
            extra_body={"n": 1, "store": False, "metadata": {"team": "blue"}},
        )
    assert refused.value.param == param
    assert CHAT in refused.value.message
    assert fine.usage is not None
    assert await counter(ctx, member.user_id, ctx.clock.now().strftime("%Y-%m")) == (
        fine.usage.total_tokens,
        0,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_local_model_continues_a_prompt_charged_exactly_its_counts(
    app: FastAPI, ctx: Context
) -> None:
    """A legacy completion is the prompt read as written, no chat template: held exactly as
    llama.cpp reads it (with the 8 tokens asked for), and charged what llama.cpp counted."""
    member = await add_member(ctx, inference_cap=100_000)
    async with openai_client(app, await key_for(ctx, member.user_id)) as client:
        whole = await client.completions.create(
            model=CHAT, prompt="The capital of France is", max_tokens=8, temperature=0
        )
        stream = await client.completions.create(
            model=CHAT,
            prompt="Once upon a time",
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert (whole.object, whole.id[:5]) == ("text_completion", "cmpl-")
    assert whole.choices[0].text
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    answers = [(whole.id, whole.usage), (chunks[0].id, chunks[-1].usage)]
    for request_id, usage in answers:
        assert usage is not None
        assert usage.prompt_tokens < 10  # the prompt's own tokens, without a template's framing
        assert await held(ctx, request_id) == usage.prompt_tokens + 8 >= usage.total_tokens
    total = sum(usage.total_tokens for _, usage in answers if usage is not None)
    assert await counter(ctx, member.user_id, ctx.clock.now().strftime("%Y-%m")) == (total, 0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"echo": True}, "echo"),
        ({"suffix": "The end."}, "suffix"),
        ({"best_of": 2}, "best_of"),
        ({"logprobs": 1}, "logprobs"),
        ({"n": 2}, "n"),
        ({"prompt": ["One", "Two"]}, "prompt[1]"),
    ],
)
async def test_the_local_model_refuses_what_a_completion_asks_beyond_its_text(
    app: FastAPI, ctx: Context, extra: dict[str, object], param: str
) -> None:
    """SmolLM2 writes one answer to one prompt and cannot echo, insert or score: each is a 400
    naming the field and the model, nothing held — never an answer without it."""
    member = await add_member(ctx, inference_cap=100_000)
    body = {"model": CHAT, "prompt": "Hi", "max_tokens": 4}
    async with openai_client(app, await key_for(ctx, member.user_id)) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.post("/completions", body=body | extra, cast_to=object)
        fine = await client.completions.create(
            model=CHAT, prompt=["Hi"], max_tokens=4, n=1, best_of=1, echo=False
        )
    assert refused.value.param == param
    assert CHAT in refused.value.message
    assert fine.usage is not None
    assert await counter(ctx, member.user_id, ctx.clock.now().strftime("%Y-%m")) == (
        fine.usage.total_tokens,
        0,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_local_model_answers_anthropics_client_and_counts_as_its_hold(
    app: FastAPI, ctx: Context
) -> None:
    """Through Anthropic's client: a text answer, `count_tokens` equal to the prompt the hold
    took (SmolLM2's own tokenizer over its chat template), and the charge what llama.cpp
    counted."""
    member = await add_member(ctx, inference_cap=100_000)
    said = [{"role": "user", "content": "Name a colour."}]
    key = await key_for(ctx, member.user_id)
    async with anthropic_client(app, api_key=key) as client:
        counted = await client.messages.count_tokens(
            model=CHAT,
            system="Be brief.",
            messages=said,  # type: ignore[arg-type]
        )
        message = await client.messages.create(
            model=CHAT,
            system="Be brief.",
            messages=said,
            max_tokens=12,  # type: ignore[arg-type]
        )
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.input_tokens == counted.input_tokens
    assert 0 < message.usage.output_tokens <= 12
    assert await held(ctx, message.id) == counted.input_tokens + 12
    charged = message.usage.input_tokens + message.usage.output_tokens
    assert message.usage.model_extra == {"tokens_charged": charged}
    period = ctx.clock.now().strftime("%Y-%m")
    assert await counter(ctx, member.user_id, period) == (charged, 0)
