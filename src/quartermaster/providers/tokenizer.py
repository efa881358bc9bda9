"""Offline token counting, identical to tiktoken's for cl100k_base and o200k_base.

The encodings ship inside the `quicktok-v1` wheel, so nothing is downloaded at run time (tiktoken
itself fetches its files on first use and fails offline). Counts treat text that looks like a
special token (`<|endoftext|>`) as ordinary text, as OpenAI does for user content.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Protocol

import quicktok

from quartermaster.providers.base import ChatMessage

CL100K = "cl100k_base"
O200K = "o200k_base"
DEFAULT_ENCODING = CL100K
# Model-name prefixes whose tokenizer is o200k_base; everything else counts with cl100k_base.
O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")

# OpenAI's chat framing: each message is wrapped as <|start|>{role/name}\n{content}<|end|>\n
# (3 tokens around it), a name costs one more, and every reply is primed with 3 tokens.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3


class Tokenizer(Protocol):
    """Counts tokens the way a model's upstream bills them."""

    @property
    def encoding(self) -> str: ...

    def count(self, text: str) -> int: ...

    def count_messages(self, messages: Sequence[ChatMessage]) -> int: ...


class BpeTokenizer:
    """A tiktoken-identical byte-pair tokenizer for one encoding."""

    def __init__(self, encoding: str = DEFAULT_ENCODING) -> None:
        assert encoding in (CL100K, O200K), (
            f"unknown encoding {encoding!r}; use {CL100K} or {O200K}"
        )
        self._encoding = encoding
        self._bpe = quicktok.get_encoding(encoding)

    @property
    def encoding(self) -> str:
        return self._encoding

    def count(self, text: str) -> int:
        return int(self._bpe.count(text))

    def encode(self, text: str) -> list[int]:
        return list(self._bpe.encode_ordinary(text))

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens of a chat request, following OpenAI's published counting rules."""
        total = TOKENS_REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE + self.count(message.role) + self.count(message.content)
            if message.name:
                total += TOKENS_PER_NAME + self.count(message.name)
        return total


def encoding_for_model(model: str) -> str:
    """The encoding a model's upstream counts with; unknown models get cl100k_base."""
    name = model.lower().rsplit("/", 1)[-1]
    return O200K if name.startswith(O200K_PREFIXES) else DEFAULT_ENCODING


@cache
def _tokenizer(encoding: str) -> BpeTokenizer:
    return BpeTokenizer(encoding)


def tokenizer_for_model(model: str) -> Tokenizer:
    """The shared tokenizer for a model; each encoding is loaded once per process."""
    return _tokenizer(encoding_for_model(model))
