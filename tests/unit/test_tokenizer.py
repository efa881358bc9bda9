"""Offline token counts match tiktoken's: ids published by OpenAI, and the chat framing rules."""

from __future__ import annotations

import pytest

from quartermaster.providers import (
    BpeTokenizer,
    ChatMessage,
    encoding_for_model,
    tokenizer_for_model,
)

CL100K = BpeTokenizer("cl100k_base")
O200K = BpeTokenizer("o200k_base")


@pytest.mark.parametrize(
    ("text", "cl100k", "o200k"),
    [
        ("hello world", 2, 2),
        ("tiktoken is great!", 6, 6),  # OpenAI's cookbook example, in both encodings
        ("Hello, world!", 4, 4),
        ("", 0, 0),
    ],
)
def test_known_counts(text: str, cl100k: int, o200k: int) -> None:
    assert (CL100K.count(text), O200K.count(text)) == (cl100k, o200k)


def test_ids_are_tiktokens() -> None:
    # The ids OpenAI's cookbook prints for tiktoken on this text, in each encoding.
    assert CL100K.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert O200K.encode("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert CL100K.encode("hello world") == [15339, 1917]


def test_o200k_packs_other_languages_tighter() -> None:
    text = "Die Katze sitzt auf der Matte und schaut aus dem Fenster. " * 4
    assert O200K.count(text) < CL100K.count(text)


def test_special_token_text_counts_as_ordinary_text() -> None:
    assert CL100K.count("<|endoftext|>") == 7


def test_chat_framing_adds_three_per_message_one_per_name_and_three_for_the_reply() -> None:
    messages = [
        ChatMessage("system", "You are terse."),
        ChatMessage("user", "hello world", name="example_user"),
    ]
    content = sum(CL100K.count(m.role) + CL100K.count(m.content) for m in messages)
    name = CL100K.count("example_user") + 1
    assert CL100K.count_messages(messages) == content + name + 3 * 2 + 3
    assert CL100K.count_messages([ChatMessage("user", "hello world")]) == 3 + 1 + 2 + 3


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("openai/gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("smollm2-135m-instruct", "cl100k_base"),
    ],
)
def test_encoding_is_chosen_per_model(model: str, encoding: str) -> None:
    assert encoding_for_model(model) == encoding
    assert tokenizer_for_model(model).encoding == encoding


def test_tokenizers_are_shared_per_encoding() -> None:
    assert tokenizer_for_model("gpt-4o") is tokenizer_for_model("gpt-4.1-mini")
