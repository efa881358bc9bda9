"""Request bodies of /v1, as OpenAI defines them, plus two extensions: `persona` (a system
prompt added in front) and `datasets` (retrieval, see docs/datasets.md).

A chat is forwarded as sent (gateway/chat_flow.py): these models read only what bounds its cost
(the messages and their parts, tools, `n`, the output limit) or what the gateway must refuse
when the model cannot do it (services/catalog capabilities); every other field, known to OpenAI
or not, passes through untouched. Shapes are checked so that a malformed message or part is a
400 naming it, before anything is held.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from quartermaster.domain.capabilities import Asks
from quartermaster.gateway.response_format import ResponseFormat
from quartermaster.providers.base import Sampling
from quartermaster.providers.prompt_count import message_text

MAX_MESSAGES = 1000
MAX_CONTENT_CHARS = 2_000_000
MAX_TOOLS = 128
MAX_CHOICES = 128


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class InputAudio(BaseModel):
    model_config = ConfigDict(extra="allow")

    data: str = Field(min_length=1)
    format: str = Field(min_length=1, max_length=16)


class ContentPart(BaseModel):
    """One part of a message: text, an image, audio or a file (OpenAI's part types)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text", "image_url", "input_audio", "file", "refusal"]
    text: str | None = None
    image_url: ImageUrl | None = None
    input_audio: InputAudio | None = None
    file: dict[str, Any] | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _carries_its_type(self) -> ContentPart:
        """A part carries the field its type names (`{"type": "image_url", "image_url": …}`)."""
        if getattr(self, self.type) is None:
            raise ValueError(f"a {self.type} part needs its {self.type} field")
        return self


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=256)
    arguments: str = ""


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=256)
    type: str = "function"
    function: FunctionCall | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    tool_call_id: str | None = Field(default=None, max_length=256)

    def text(self) -> str:
        return message_text(self.model_dump(include={"content"})["content"])


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class Tool(BaseModel):
    """A tool the model may call: a function with its JSON schema (other kinds pass as sent)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=64)


class Generation(BaseModel):
    """The fields a chat and a legacy completion share: how the answer is drawn and sent."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    n: int | None = Field(default=None, ge=1, le=MAX_CHOICES)
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

    def sampling(self) -> Sampling:
        penalties = (self.presence_penalty, self.frequency_penalty)
        structured = self.response_format.forwarded() if self.response_format else None
        return Sampling(self.top_p, *penalties, self.seed, structured)

    def include_usage(self) -> bool:
        """Whether a stream ends with the usage chunk (`stream_options.include_usage`)."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(Generation):
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    persona: str | None = Field(default=None, max_length=20_000)
    datasets: list[int] | None = Field(default=None, max_length=20)
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    functions: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS)
    logprobs: StrictBool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("messages")
    @classmethod
    def _bounded(cls, messages: list[Message]) -> list[Message]:
        if sum(len(m.text()) for m in messages) > MAX_CONTENT_CHARS:
            raise ValueError(f"the messages are longer than {MAX_CONTENT_CHARS} characters")
        return messages

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def asks(self) -> Asks:
        """What the call asks of its model beyond text, each by the field that asks it."""
        return Asks(
            tools=_first_tools(self),
            vision=_first_part(self.messages, "image_url"),
            audio_input=_first_part(self.messages, "input_audio"),
            files=_first_part(self.messages, "file"),
            logprobs="logprobs" if self.logprobs or self.top_logprobs else None,
            choices=self.n or 1,
        )


EXTENSIONS = ("persona", "datasets")
"""Our own fields: read by the gateway, never forwarded."""


def _first_tools(body: ChatCompletionRequest) -> str | None:
    for name in ("tools", "functions"):
        if getattr(body, name):
            return name
    for index, message in enumerate(body.messages):
        if message.tool_calls or message.function_call:
            return f"messages[{index}].{'tool_calls' if message.tool_calls else 'function_call'}"
        if message.role in ("tool", "function"):
            return f"messages[{index}].role"
    return None


def _first_part(messages: list[Message], kind: str) -> str | None:
    for i, message in enumerate(messages):
        for j, part in enumerate(message.content if isinstance(message.content, list) else ()):
            if part.type == kind:
                return f"messages[{i}].content[{j}]"
    return None


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
