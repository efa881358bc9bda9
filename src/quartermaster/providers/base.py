"""What every model provider offers the gateway: chat, streamed chat, embeddings, close.

Remote upstreams and the embedded local models implement the same `Provider` protocol, so the
gateway never knows which one it is talking to. Requests and results are plain dataclasses;
token usage is `None` when the upstream did not report it, and the gateway then counts locally.

A chat carries the caller's OpenAI body (`ChatRequest.wire`) beside its typed fields: an HTTP
upstream gets that body as sent, with every field the gateway does not read (tools, `n`,
logprobs, images…), and its answer comes back whole (`ChatResult.raw`, `ChatChunk.raw`). The
embedded model reads the typed fields; the gateway has refused what it cannot do. A legacy
completion (`ChatRequest.prompts`) is the same request sent to the upstream's `completions`
endpoint: its prompt is continued as written, with no chat template. A call in a dialect the
upstream speaks natively (`NativeCall`: OpenAI's Responses API, Anthropic's Messages API) is
sent as the caller wrote it, and its answer and events come back as the upstream gave them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from quartermaster.providers.tokenizer import Tokenizer


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
class NativeCall:
    """A call forwarded in its own dialect: `dialect` is the upstream's path ("responses",
    "messages"), `body` the caller's (its `model` and `stream` are the provider's to set), and
    `headers` those of the caller's that the dialect defines (`anthropic-version`)."""

    dialect: str
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: Sequence[str] = field(default_factory=tuple)
    sampling: Sampling = field(default_factory=Sampling)
    wire: Mapping[str, Any] | None = None
    """The caller's OpenAI chat body, as an HTTP upstream gets it (its `model`, `stream` and
    `stream_options` are the provider's to set); None: built from the typed fields."""
    prompts: Sequence[str] = ()
    """A legacy completion's prompts, each continued as written; empty: a chat of `messages`."""
    native: NativeCall | None = None
    """Sent in its own dialect instead of as a chat (the provider `speaks` it)."""

    @property
    def endpoint(self) -> str:
        """The upstream path the request is posted to, under its base URL."""
        if self.native is not None:
            return self.native.dialect
        return "completions" if self.prompts else "chat/completions"

    def wire_body(self) -> dict[str, Any]:
        """The OpenAI body for an upstream, without `model` and `stream`."""
        if self.wire is not None:
            return dict(self.wire)
        messages = [
            {"role": m.role, "content": m.content} | ({"name": m.name} if m.name else {})
            for m in self.messages
        ]
        body: dict[str, Any] = (
            {"prompt": list(self.prompts)} if self.prompts else {"messages": messages}
        )
        optional = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        body |= {key: value for key, value in optional.items() if value is not None}
        if self.stop:
            body["stop"] = list(self.stop)
        return body | self.sampling.given()


@dataclass(frozen=True)
class TokenUsage:
    """Tokens as the model counted them (the upstream's tokenizer, not ours)."""

    prompt_tokens: int
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Of the prompt tokens, those the upstream read from its prompt cache."""
    reasoning_tokens: int = 0
    """Of the completion tokens, those spent reasoning (not shown in the answer)."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    content: str
    finish_reason: str
    usage: TokenUsage | None
    model: str
    raw: Mapping[str, Any] | None = None
    """The upstream's `chat.completion` object as it came (choices, tool calls, logprobs)."""


@dataclass(frozen=True)
class ChatChunk:
    """One piece of a streamed answer. The last chunk of a stream has `finish_reason` set and
    carries the usage when the upstream reported it; no chunk follows it."""

    delta: str = ""
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    raw: Mapping[str, Any] | None = None
    """The upstream's `chat.completion.chunk` event as it came; on the last chunk, the event
    that carried the usage, if any."""

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

    def unsupported(self, body: Mapping[str, Any]) -> str | None:
        """The first field of a chat body the provider would have to ignore (an HTTP upstream
        takes them all: None), so the gateway refuses it instead of dropping it."""
        ...

    def speaks(self, dialect: str) -> bool:
        """Whether calls in `dialect` ("responses", "messages") go to the model as sent
        (`ChatRequest.native`) rather than translated into a chat."""
        ...

    def tokenizer(self) -> Tokenizer | None:
        """The model's own prompt counter when the provider has one (the embedded model's
        tokenizer and chat template); None: count as the model's name says (tokenizer.py)."""
        ...

    async def close(self) -> None: ...
