"""The embedded models, for real: SmolLM2 through llama.cpp and MiniLM through NumPy.
Prompts are short and answers capped at a few tokens to keep the suite quick."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quartermaster.providers import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    LocalChatProvider,
    LocalEmbedProvider,
    ProviderRejected,
    Sampling,
    local_chat,
    local_embed,
)

GREEDY = ChatRequest([ChatMessage("user", "Say hello.")], max_tokens=6, temperature=0)


@pytest.fixture(scope="module")
def chat() -> LocalChatProvider:
    return LocalChatProvider()


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedProvider:
    return LocalEmbedProvider()


async def test_chat_answers_with_llama_cpp_counts(chat: LocalChatProvider) -> None:
    result = await chat.chat(GREEDY)
    assert result.content.strip()
    assert result.model == "SmolLM2-135M-Instruct"
    assert result.finish_reason in {"stop", "length"}
    assert result.usage is not None
    assert result.usage.prompt_tokens > 5  # the chat template wraps the few words of the prompt
    assert 0 < result.usage.completion_tokens <= 6


async def test_stream_gives_the_same_greedy_answer_and_ends_with_usage(
    chat: LocalChatProvider,
) -> None:
    whole = await chat.chat(GREEDY)
    chunks = [chunk async for chunk in chat.stream_chat(GREEDY)]
    assert "".join(c.delta for c in chunks) == whole.content
    assert [c.is_final for c in chunks].count(True) == 1
    assert chunks[-1].usage == whole.usage


async def test_a_stream_left_early_frees_the_model_for_the_next_caller(
    chat: LocalChatProvider,
) -> None:
    long = ChatRequest([ChatMessage("user", "Tell a long story.")], max_tokens=400)
    stream = chat.stream_chat(long)
    first: ChatChunk = await anext(stream)
    await stream.aclose()
    assert first.delta
    # Were generation still running, this would wait for the 400 tokens of the story.
    result = await chat.chat(GREEDY)
    assert result.usage is not None
    assert result.usage.completion_tokens <= 6


async def test_stop_sequences_end_the_answer_before_them(chat: LocalChatProvider) -> None:
    request = ChatRequest(
        [ChatMessage("user", "Count from 1 to 9, separated by commas.")],
        max_tokens=30,
        temperature=0,
        stop=["4"],
    )
    result = await chat.chat(request)
    assert "4" not in result.content
    assert result.finish_reason == "stop"


async def test_a_seed_makes_a_sampled_answer_repeatable(chat: LocalChatProvider) -> None:
    def poem(seed: int) -> ChatRequest:
        line = [ChatMessage("user", "Write one line about the sea.")]
        return ChatRequest(line, max_tokens=12, temperature=1.5, sampling=Sampling(seed=seed))

    first, again = await chat.chat(poem(11)), await chat.chat(poem(11))
    others = {(await chat.chat(poem(seed))).content for seed in (12, 13, 14)}
    assert first.content == again.content
    assert others != {first.content}  # sampled, not the same answer whatever the seed


def _asking_for(response_format: dict[str, object]) -> ChatRequest:
    return ChatRequest(
        [ChatMessage("user", "Name a colour, as JSON with the key colour.")],
        max_tokens=40,
        temperature=0,
        sampling=Sampling(response_format=response_format),
    )


async def test_json_output_is_json_from_its_first_character(chat: LocalChatProvider) -> None:
    """The grammar allows nothing but JSON (a small model may still not finish it in time)."""
    result = await chat.chat(_asking_for({"type": "json_object"}))
    assert result.content.startswith("{"), result.content


COLOUR = {
    "type": "json_schema",
    "json_schema": {
        "name": "colour",
        "schema": {
            "type": "object",
            "properties": {"colour": {"type": "string", "maxLength": 12}},
            "required": ["colour"],
            "additionalProperties": False,
        },
    },
}
"""A `response_format` a small model can follow to its end in a few tokens."""


async def test_json_of_a_schema_follows_the_schema(chat: LocalChatProvider) -> None:
    result = await chat.chat(_asking_for(COLOUR))
    assert result.finish_reason == "stop", result.content
    assert list(json.loads(result.content)) == ["colour"]


async def test_a_schema_the_grammar_cannot_follow_is_the_callers_to_fix(
    chat: LocalChatProvider,
) -> None:
    asked = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "frob"}}}
    with pytest.raises(ProviderRejected, match="JSON schema"):
        await chat.chat(_asking_for(asked))


async def test_a_schema_whose_grammar_would_be_too_deep_is_refused(
    chat: LocalChatProvider,
) -> None:
    """The grammar spells a length out as nested options: 20,000 would be 20,000 levels deep,
    which llama.cpp's parser would follow down its stack."""
    long_name = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20_000}}}
    asked = {"type": "json_schema", "json_schema": {"name": "x", "schema": long_name}}
    with pytest.raises(ProviderRejected, match="at most 1000"):
        await chat.chat(_asking_for(asked))


async def test_a_completion_continues_its_prompt_as_written(chat: LocalChatProvider) -> None:
    """No chat template: the model reads the prompt's own tokens, which are exactly what its
    tokenizer counts for the hold."""
    prompt = "The capital of France is"
    result = await chat.chat(ChatRequest((), max_tokens=6, temperature=0, prompts=(prompt,)))
    assert result.content
    assert result.usage is not None
    assert result.usage.prompt_tokens == chat.tokenizer().count(prompt)
    framed = chat.tokenizer().count_messages([ChatMessage("user", prompt)])
    assert result.usage.prompt_tokens < framed
    assert 0 < result.usage.completion_tokens <= 6


async def test_a_prompt_beyond_the_context_is_rejected(chat: LocalChatProvider) -> None:
    huge = ChatRequest([ChatMessage("user", "word " * (local_chat.CONTEXT_TOKENS + 10))])
    with pytest.raises(ProviderRejected, match="at most"):
        await chat.chat(huge)


async def test_each_local_model_does_only_its_own_kind(
    chat: LocalChatProvider, embedder: LocalEmbedProvider
) -> None:
    with pytest.raises(ProviderRejected, match="does not support embeddings"):
        await chat.embed(["x"])
    with pytest.raises(ProviderRejected, match="does not support chat"):
        await embedder.chat(GREEDY)
    with pytest.raises(ProviderRejected, match="does not support chat"):
        await anext(embedder.stream_chat(GREEDY))


def test_the_models_load_once_per_process() -> None:
    assert local_chat._CHAT.get() is local_chat._CHAT.get()
    assert local_embed._EMBEDDER.get() is local_embed._EMBEDDER.get()


async def test_embeddings_are_384_unit_vectors(embedder: LocalEmbedProvider) -> None:
    result = await embedder.embed(["hello world", "a second, longer sentence to embed"])
    vectors = np.array(result.vectors, dtype=np.float32)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # [CLS] hello world [SEP] is 4 tokens; the second is [CLS] + 7 words and a comma + [SEP].
    assert result.usage is not None
    assert result.usage.prompt_tokens == 4 + 10


async def test_related_sentences_are_closer_than_unrelated(embedder: LocalEmbedProvider) -> None:
    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "A cheetah is running behind its prey.",
    ]
    v = np.array((await embedder.embed(texts)).vectors)
    similarity = v @ v.T
    assert similarity[0, 1] > 0.6
    assert similarity[0, 1] > similarity[0, 2] + 0.4
    assert similarity[0, 1] > similarity[0, 3] + 0.4


async def test_a_vector_does_not_depend_on_its_batch(embedder: LocalEmbedProvider) -> None:
    alone = (await embedder.embed(["short text"])).vectors[0]
    again = (await embedder.embed(["short text"])).vectors[0]
    batched = await embedder.embed(["a much longer text " * 20, "short text", "x"])
    assert alone == again
    np.testing.assert_allclose(batched.vectors[1], alone, atol=1e-5)


async def test_long_inputs_are_truncated_to_256_tokens(embedder: LocalEmbedProvider) -> None:
    result = await embedder.embed(["token " * 1000])
    assert result.usage is not None
    assert result.usage.prompt_tokens == 256
    assert (await embedder.embed([])).vectors == []
