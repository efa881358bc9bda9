"""What every model provider offers the gateway: chat, streamed chat, embeddings, close.

Remote upstreams and the embedded local models implement the same `Provider` protocol, so the
gateway never knows which one it is talking to. Requests and results are plain dataclasses;
token usage is `None` when the upstream did not report it, and the gateway then counts locally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    name: str | None = None


@dataclass(frozen=True)
class Sampling:
    """How the answer is drawn beyond its temperature, as OpenAI names it; None: the model's
    default. Upstreams get these as they are; the local model honours what llama.cpp can."""

    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    response_format: Mapping[str, Any] | None = None
    """Structured output (`{"type": "json_object"}` or `"json_schema"`); None: plain text."""

    def given(self) -> dict[str, Any]:
        """The fields that were set, by their OpenAI names."""
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: Sequence[str] = field(default_factory=tuple)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class TokenUsage:
    """Tokens as the model counted them (the upstream's tokenizer, not ours)."""

    prompt_tokens: int
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    content: str
    finish_reason: str
    usage: TokenUsage | None
    model: str


@dataclass(frozen=True)
class ChatChunk:
    """One piece of a streamed answer. The last chunk of a stream has `finish_reason` set and
    carries the usage when the upstream reported it; no chunk follows it."""

    delta: str = ""
    finish_reason: str | None = None
    usage: TokenUsage | None = None

    @property
    def is_final(self) -> bool:
        return self.finish_reason is not None


@dataclass(frozen=True)
class EmbedResult:
    vectors: list[list[float]]
    usage: TokenUsage | None
    model: str


@runtime_checkable
class Provider(Protocol):
    """A model behind an upstream. Methods raise only `ProviderError` subclasses."""

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]: ...

    async def embed(self, inputs: list[str]) -> EmbedResult: ...

    async def close(self) -> None: ...
