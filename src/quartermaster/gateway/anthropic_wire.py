"""Anthropic's Messages request (`POST /v1/messages`, `/v1/messages/count_tokens`) and the OpenAI
chat body it becomes, so that it is checked, held, forwarded and settled on the one path every
chat takes (gateway/chat_flow.py).

Fields are checked as Anthropic defines them. What the gateway cannot honour is refused by name,
never dropped: fields Anthropic's API has and the gateway does not take (`thinking` other than
disabled, `container`, `mcp_servers`, …) or that it never had, server tools, documents other
than a PDF's bytes or plain text, image sources other than bytes or a URL. Some things are
accepted and left out on purpose: `cache_control`, wherever Anthropic allows it (the gateway
caches nothing; an upstream's own prompt cache still shows in `cache_read_input_tokens`), and
what earlier answers carried beside their text: thinking blocks (Anthropic's API leaves them
out of the context too) and citations. `top_k`, which OpenAI's chat has not, is forwarded as
`top_k`: upstreams that sample with it (vLLM, llama.cpp's server) honour it, the others and the
embedded model refuse it by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.schemas import MAX_MESSAGES, MAX_TOOLS

CacheControl = dict[str, Any] | None
"""Accepted wherever Anthropic takes it, and ignored (see the module's docstring)."""


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
        where = field_path(raw, first["loc"])
        said = UNTAKEN if first["type"] == "extra_forbidden" else first["msg"]
        message = f"{where}: {said.removeprefix('Value error, ')}"
        raise InvalidInput(message, param=where, code="invalid_value") from None


def field_path(raw: Any, loc: Sequence[int | str]) -> str:
    """`loc` as a path through what the caller sent (`messages.0.content.1.source.data`):
    pydantic also names the member of a tagged union it tried, which is the object's `type`
    and never the last step, and is no field of the request."""
    path: list[str] = []
    value = raw
    for step, part in enumerate(loc):
        is_tag = isinstance(value, Mapping) and part == value.get("type")
        if is_tag and step < len(loc) - 1:
            continue
        path.append(str(part))
        value = _child(value, part)
    return ".".join(path)


def _child(value: Any, part: int | str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part)
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return value[part]
    return None


def chat_prompt(request: CountTokensRequest) -> dict[str, Any]:
    """The prompt as an OpenAI chat body: the model, the messages and the tools."""
    body: dict[str, Any] = {"model": request.model, "messages": _messages(request)}
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.tool_choice.disable_parallel_tool_use and request.tools:
            body["parallel_tool_calls"] = False
    return body


def to_chat_body(request: MessagesRequest) -> dict[str, Any]:
    """The whole call as an OpenAI chat body."""
    generation = {
        "max_tokens": request.max_tokens,
        "stop": request.stop_sequences,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "user": request.metadata.user_id if request.metadata else None,
        "stream": request.stream or None,
    }
    return chat_prompt(request) | {name: v for name, v in generation.items() if v is not None}


def _messages(request: CountTokensRequest) -> list[dict[str, Any]]:
    said: list[dict[str, Any]] = []
    if request.system:
        said.append({"role": "system", "content": _content([_text(b) for b in request.system])})
    for index, message in enumerate(request.messages):
        turn = _user if message.role == "user" else _assistant
        said += turn(message.content, f"messages.{index}.content")
    return said


def _user(blocks: list[Block], where: str) -> list[dict[str, Any]]:
    """The tool results first, each a `tool` message right after the assistant's calls (their
    images and documents, which a tool message cannot hold, go to the user message after
    them), then the user's own text, images and documents."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        if isinstance(block, ToolResultBlock):
            texts = [_text(part) for part in block.content if isinstance(part, TextBlock)]
            media = [part for part in block.content if not isinstance(part, TextBlock)]
            if block.is_error:
                texts.insert(0, {"type": "text", "text": "Error: "})
            content = _content(texts) if texts else ""
            results.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": content})
            parts += [_part(part, f"{where}.{index}") for part in media]
        else:
            parts.append(_part(block, f"{where}.{index}"))
    return results + ([{"role": "user", "content": _content(parts)}] if parts else [])


def _assistant(blocks: list[Block], where: str) -> list[dict[str, Any]]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        if isinstance(block, TextBlock):
            texts.append(_text(block))
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, separators=(",", ":"), ensure_ascii=False)
            function = {"name": block.name, "arguments": arguments}
            calls.append({"id": block.id, "type": "function", "function": function})
        elif not isinstance(block, ThinkingBlock | RedactedThinkingBlock):
            raise _misplaced(block, f"{where}.{index}", "an assistant")
    if not calls:
        return [{"role": "assistant", "content": _content(texts) if texts else ""}]
    content = _content(texts) if texts else None  # OpenAI's calls alone carry no content
    return [{"role": "assistant", "content": content, "tool_calls": calls}]


def _part(block: Block, where: str) -> dict[str, Any]:
    """A user's block as an OpenAI content part."""
    if isinstance(block, TextBlock):
        return _text(block)
    if isinstance(block, ImageBlock):
        source = block.source
        url = source.url if isinstance(source, UrlImage) else _data_url(source)
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(block, DocumentBlock):
        if isinstance(block.source, PlainText):
            title = f"{block.title}\n\n" if block.title else ""
            return {"type": "text", "text": title + block.source.data}
        named = block.title or "document.pdf"
        return {"type": "file", "file": {"filename": named, "file_data": _data_url(block.source)}}
    raise _misplaced(block, where, "a user")


def _misplaced(block: Block, where: str, whose: str) -> InvalidInput:
    return InvalidInput(f"{where}: a {block.type} block cannot be in {whose} message", param=where)


def _text(block: TextBlock) -> dict[str, Any]:
    return {"type": "text", "text": block.text}


def _data_url(source: Base64Image | Base64Pdf) -> str:
    return f"data:{source.media_type};base64,{source.data}"


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text is sent as a plain string, which every upstream takes; anything else as parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.type == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]
