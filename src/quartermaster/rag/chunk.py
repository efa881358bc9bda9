"""Text to overlapping, token-aware chunks sized for an embedding model's input window.

Words (with the whitespace before them) are packed into a chunk until the next one would pass
`plan.tokens`; the next chunk starts with the last words worth up to `plan.overlap` tokens, so a
sentence cut at a boundary is whole in one of the two. A "word" longer than a chunk (a URL, a
run of CJK text) is halved until it fits. Sizes are measured with the tokenizer the upload is
billed with (cl100k for the local model), and kept at three quarters of the model's window: the
model's own WordPiece tokenizer usually needs 10–30 % more tokens for the same text, and any
text past its window would be silently truncated, not embedded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

MAX_CHUNK_TOKENS = 512
"""Even for models with long windows: smaller chunks retrieve more precisely."""


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


@dataclass(frozen=True)
class ChunkPlan:
    tokens: int
    overlap: int

    def __post_init__(self) -> None:
        assert 0 <= self.overlap < self.tokens, "the overlap must be shorter than a chunk"


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    tokens: int


def plan_for(context_window: int) -> ChunkPlan:
    """Chunks of 3/4 of the model's window (at most 512 tokens), overlapping by 1/6 of that."""
    tokens = max(16, min(MAX_CHUNK_TOKENS, context_window * 3 // 4))
    return ChunkPlan(tokens, tokens // 6)


_WORDS = re.compile(r"\s*\S+")


def _pieces(text: str, counter: TokenCounter, limit: int) -> Iterator[tuple[str, int]]:
    """(piece, tokens) in order, each at most `limit` tokens."""
    for match in _WORDS.finditer(text):
        yield from _fitted(match.group(), counter, limit)


def _fitted(piece: str, counter: TokenCounter, limit: int) -> Iterator[tuple[str, int]]:
    tokens = counter.count(piece)
    if tokens <= limit or len(piece) < 2:
        yield piece, tokens
        return
    middle = len(piece) // 2
    yield from _fitted(piece[:middle], counter, limit)
    yield from _fitted(piece[middle:], counter, limit)


def split(text: str, counter: TokenCounter, plan: ChunkPlan) -> list[Chunk]:
    """The text's chunks in order; each chunk's `tokens` is counted exactly, as it is billed."""
    texts: list[str] = []
    window: list[tuple[str, int]] = []
    total, fresh = 0, False
    for piece, tokens in _pieces(text, counter, plan.tokens):
        if window and total + tokens > plan.tokens:
            texts.append("".join(p for p, _ in window))
            window = _tail(window, min(plan.overlap, plan.tokens - tokens))
            total, fresh = sum(n for _, n in window), False
        window.append((piece, tokens))
        total += tokens
        fresh = True
    if fresh:
        texts.append("".join(p for p, _ in window))
    stripped = (chunk.strip() for chunk in texts)
    return [
        Chunk(ordinal, chunk, counter.count(chunk))
        for ordinal, chunk in enumerate(chunk for chunk in stripped if chunk)
    ]


def _tail(window: list[tuple[str, int]], overlap: int) -> list[tuple[str, int]]:
    """The last pieces of `window` whose tokens add up to at most `overlap`."""
    kept: list[tuple[str, int]] = []
    total = 0
    for piece, tokens in reversed(window):
        if total + tokens > overlap:
            break
        kept.append((piece, tokens))
        total += tokens
    return kept[::-1]
