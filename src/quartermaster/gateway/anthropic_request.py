"""Anthropic's Messages request (`POST /v1/messages`, `/v1/messages/count_tokens`), checked as
Anthropic defines it before anything is held.

What the gateway cannot honour is refused by name, never dropped: fields Anthropic's API has
and the gateway does not take (`thinking` other than disabled, `container`, `mcp_servers`, …)
or that it never had, server tools, documents other than a PDF's bytes or plain text, image
sources other than bytes or a URL. `cache_control` is accepted wherever Anthropic takes it, and
so are what earlier answers carried beside their text (thinking blocks, citations): what the
translation does with them is in anthropic_wire.py. A refusal names the field as the caller
wrote it (`messages[0].content[1].source.data`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.schemas import MAX_MESSAGES, MAX_TOOLS

CacheControl = dict[str, Any] | None
"""Accepted wherever Anthropic takes it, and ignored (anthropic_wire.py)."""


def _blocks(value: Any) -> Any:
    """A string stands for one text block, as in Anthropic's API."""
    return [{"type": "text", "text": value}] if isinstance(value, str) else value


class _Fields(BaseModel):
    """An object of Anthropic's API: a field not declared here is refused by name."""

    model_config = ConfigDict(extra="forbid")


class TextBlock(_Fields):
    type: Literal["text"]
    text: str
    cache_control: CacheControl = None
    citations: list[dict[str, Any]] | None = None
    """Sent back with an earlier answer's text; the model reads the text alone."""


class Base64Image(_Fields):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(min_length=1)


class UrlImage(_Fields):
    type: Literal["url"]
    url: str = Field(min_length=1)


class ImageBlock(_Fields):
    type: Literal["image"]
    source: Annotated[Base64Image | UrlImage, Field(discriminator="type")]
    cache_control: CacheControl = None


class Base64Pdf(_Fields):
    type: Literal["base64"]
    media_type: Literal["application/pdf"]
    data: str = Field(min_length=1)


class PlainText(_Fields):
    type: Literal["text"]
    media_type: Literal["text/plain"]
    data: str


class DocumentBlock(_Fields):
    type: Literal["document"]
    source: Annotated[Base64Pdf | PlainText, Field(discriminator="type")]
    title: str | None = Field(default=None, max_length=500)
    cache_control: CacheControl = None


class ToolUseBlock(_Fields):
    type: Literal["tool_use"]
    id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=256)
    input: dict[str, Any]
    cache_control: CacheControl = None


ResultPart = Annotated[TextBlock | ImageBlock | DocumentBlock, Field(discriminator="type")]


class ToolResultBlock(_Fields):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1, max_length=256)
    content: list[ResultPart] = Field(default_factory=list)
    is_error: bool = False
    cache_control: CacheControl = None

    _text_alone = field_validator(
        "content", mode="before", json_schema_input_type=str | list[ResultPart]
    )(_blocks)


class ThinkingBlock(_Fields):
    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(_Fields):
    type: Literal["redacted_thinking"]
    data: str


Block = Annotated[
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock,
    Field(discriminator="type"),
]


class Message(_Fields):
    role: Literal["user", "assistant"]
    content: list[Block] = Field(min_length=1)

    _text_alone = field_validator(
        "content", mode="before", json_schema_input_type=str | list[Block]
    )(_blocks)


class Tool(_Fields):
    """A tool of the caller's own (a function); `type` comes first so that a server tool is
    refused as one rather than for the fields it lacks."""

    type: str | None = None
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]
    strict: bool | None = None
    cache_control: CacheControl = None

    @field_validator("type")
    @classmethod
    def _custom(cls, kind: str | None) -> str | None:
        if kind not in (None, "custom"):
            raise ValueError(
                f"{kind} is one of Anthropic's server tools, which run on Anthropic's side; "
                "the gateway's models take only your own tools (name, description, input_schema)"
            )
        return kind


class ToolChoice(_Fields):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = Field(default=None, min_length=1, max_length=128)
    disable_parallel_tool_use: bool = False

    @model_validator(mode="after")
    def _named_when_a_tool(self) -> ToolChoice:
        if (self.type == "tool") != (self.name is not None):
            raise PydanticCustomError("invalid_value", "name is given exactly when type is tool")
        return self


class ThinkingOff(_Fields):
    type: Literal["disabled"]


class Metadata(_Fields):
    user_id: str | None = Field(default=None, max_length=256)


class CountTokensRequest(_Fields):
    """The prompt of a messages call: what `count_tokens` counts."""

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    system: list[TextBlock] | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    thinking: ThinkingOff | None = None
    cache_control: CacheControl = None

    _text_alone = field_validator(
        "system", mode="before", json_schema_input_type=str | list[TextBlock] | None
    )(_blocks)

    @field_validator("thinking", mode="before")
    @classmethod
    def _no_thinking(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and value.get("type") != "disabled":
            raise ValueError(
                "the gateway's models answer without extended thinking; leave thinking out or "
                'send {"type": "disabled"}'
            )
        return value


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)
    metadata: Metadata | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)


RequestT = TypeVar("RequestT", bound=CountTokensRequest)
UNTAKEN = "the gateway does not take this field; leave it out"


def read(model: type[RequestT], raw: Mapping[str, Any]) -> RequestT:
    """`raw` checked as `model`; the first fault is a 400 naming its field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _field_path(raw, first["loc"])
        said = UNTAKEN if first["type"] == "extra_forbidden" else first["msg"]
        message = f"{where}: {said.removeprefix('Value error, ')}"
        raise InvalidInput(message, param=where, code="invalid_value") from None


def _field_path(raw: Any, loc: Sequence[int | str]) -> str:
    """`loc` as a path through what the caller sent (`messages[0].content[1].source.data`):
    pydantic also names the member of a tagged union it tried, which is the object's `type`
    and never the last step, and is no field of the request."""
    path = ""
    value = raw
    for step, part in enumerate(loc):
        is_tag = isinstance(value, Mapping) and part == value.get("type")
        if is_tag and step < len(loc) - 1:
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
        value = _child(value, part)
    return path


def _child(value: Any, part: int | str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part)
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return value[part]
    return None
