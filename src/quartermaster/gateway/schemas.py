"""Request bodies of /v1, as OpenAI defines them, plus two extensions: `persona` (a system
prompt added in front) and `datasets` (retrieval, see docs/datasets.md).

A chat's fields are honoured, forwarded to the model (the sampling ones), or refused by name
(`UNSUPPORTED`): a field that would change the answer's shape or what it costs — more choices,
tool calls, log probabilities, audio, images — is never silently dropped. Fields that only
describe the request to OpenAI itself (`metadata`, `store`, `service_tier`, …) are ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from quartermaster.gateway.response_format import ResponseFormat
from quartermaster.providers.base import Sampling

MAX_MESSAGES = 1000
MAX_CONTENT_CHARS = 2_000_000


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


Calls = list[Any] | dict[str, Any] | None
"""An assistant message's `tool_calls` (or its older `function_call`)."""


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[Any] | None = None
    function_call: dict[str, Any] | None = None

    @field_validator("role")
    @classmethod
    def _not_a_tool_result(cls, role: str) -> str:
        if role == "tool":
            raise PydanticCustomError(
                "unsupported_value", "tool results are not supported: tool calling is not offered"
            )
        return role

    @field_validator("tool_calls", "function_call")
    @classmethod
    def _no_calls(cls, calls: Calls) -> Calls:
        if calls:
            raise PydanticCustomError(
                "unsupported_parameter", "tool calls are not supported: tool calling is not offered"
            )
        return calls

    @field_validator("content")
    @classmethod
    def _text_only(cls, content: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        if isinstance(content, list):
            for part in content:
                if part.type != "text":
                    raise PydanticCustomError(
                        "unsupported_value",
                        "only text content is supported; this message has a part of type {kind}",
                        {"kind": part.type},
                    )
        return content

    def text(self) -> str:
        """The message's text (its parts are all text: `_text_only`)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    include_usage: bool = False


UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "n": ((None, 1), "one choice per request (n=1); send the request again for another"),
    "tools": ((None, []), "tool calling is not supported; the gateway returns text answers"),
    "tool_choice": ((None, "none", "auto"), "tool calling is not supported"),
    "functions": ((None, []), "function calling is not supported"),
    "function_call": ((None, "none", "auto"), "function calling is not supported"),
    "logprobs": ((None, False), "log probabilities are not returned"),
    "top_logprobs": ((None, 0), "log probabilities are not returned"),
    "logit_bias": ((None, {}), "logit bias is not supported"),
    "audio": ((None,), "audio output is not supported"),
    "modalities": ((None, ["text"]), "only text output is supported"),
    "prediction": ((None,), "predicted outputs are not supported"),
    "web_search_options": ((None,), "web search is not supported"),
}
"""OpenAI's chat fields the gateway does not offer: the values that ask for nothing, and why
any other is refused (400, `unsupported_parameter`, `param` naming the field)."""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**63)
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    user: str | None = Field(default=None, max_length=256)
    persona: str | None = Field(default=None, max_length=20_000)
    datasets: list[int] | None = Field(default=None, max_length=20)
    n: StrictInt | None = None
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[Any] | None = None
    function_call: str | dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = None
    logit_bias: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None

    @field_validator(*UNSUPPORTED)
    @classmethod
    def _offered(cls, value: Any, info: ValidationInfo) -> Any:
        asks_for_nothing, why = UNSUPPORTED[info.field_name or ""]
        if value not in asks_for_nothing:
            raise PydanticCustomError("unsupported_parameter", why)
        return value

    @field_validator("messages")
    @classmethod
    def _bounded(cls, messages: list[Message]) -> list[Message]:
        if sum(len(m.text()) for m in messages) > MAX_CONTENT_CHARS:
            raise ValueError(f"the messages are longer than {MAX_CONTENT_CHARS} characters")
        return messages

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences")
        return stop

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def sampling(self) -> Sampling:
        penalties = (self.presence_penalty, self.frequency_penalty)
        structured = self.response_format.forwarded() if self.response_format else None
        return Sampling(self.top_p, *penalties, self.seed, structured)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    input: str | list[str] = Field(description="A text or a list of texts (not token arrays).")
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = Field(default=None, max_length=256)

    @field_validator("input")
    @classmethod
    def _some_texts(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not 1 <= len(texts) <= 2048:
            raise ValueError("input must hold 1 to 2048 texts")
        if any(not text for text in texts) or sum(map(len, texts)) > MAX_CONTENT_CHARS:
            raise ValueError(f"texts must be non-empty and {MAX_CONTENT_CHARS} characters at most")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
