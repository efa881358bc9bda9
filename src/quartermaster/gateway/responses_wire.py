"""The Responses API's request (`POST /v1/responses`) as the gateway reads it, and refuses what it
cannot do: it answers through a chat (gateway/responses_chat.py translates), metered on the one
path every route shares, and keeps nothing between calls.

So what needs OpenAI's servers to remember or run something is a 400 naming the field, before
anything is held: `previous_response_id`, `conversation`, `store: true`, `background: true`,
hosted tools (web search, file search, computer use…) and files by id. Every other field is
translated, or accepted and ignored where ignoring changes nothing the caller gets (`metadata`,
`store: false`, `truncation: "disabled"`, `include: ["reasoning.encrypted_content"]`, a
`reasoning.summary` of `auto`, `stream_options`); a field named nowhere here is refused as
`unsupported_parameter`, never dropped. A null field is an absent one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from quartermaster.domain.errors import InvalidInput
from quartermaster.http.errors import OWN_CODES

STATELESS = (
    "the gateway keeps no responses or conversations: send the whole conversation in `input` "
    "each time, and leave `store` out or false"
)
UNKNOWN_TYPE = "unknown_type"
"""The error of an item or part whose `type` is none the gateway translates."""


class Wire(BaseModel):
    """A part of the request: a field it does not name is refused, not dropped; null is the
    same as absent (the SDKs send `previous_response_id: null` when given None)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def refused(code: str, message: str, **context: str) -> PydanticCustomError:
    """A validation error of our own `code` (OpenAI's, such as `unsupported_value`)."""
    return PydanticCustomError(code, message, context)


class InputText(Wire):
    type: Literal["input_text"]
    text: str


class OutputText(Wire):
    """Text a model wrote, sent back in an assistant message; its annotations and log
    probabilities (the gateway's answers carry none) are not sent to the model."""

    type: Literal["output_text"]
    text: str
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class Refusal(Wire):
    type: Literal["refusal"]
    refusal: str


class InputImage(Wire):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("file_id")
    @classmethod
    def _no_file_ids(cls, _: str) -> str:
        raise refused(
            "unsupported_parameter",
            "files uploaded to OpenAI cannot be read through the gateway; send the image in "
            "image_url (a URL or a data: URL)",
        )

    @model_validator(mode="after")
    def _has_its_url(self) -> InputImage:
        if self.image_url is None:
            raise refused("invalid_value", "an input_image needs its image_url")
        return self


class InputFile(Wire):
    type: Literal["input_file"]
    file_data: str | None = None
    filename: str | None = None
    file_id: str | None = None
    file_url: str | None = None

    @field_validator("file_id", "file_url")
    @classmethod
    def _only_data(cls, _: str) -> str:
        raise refused(
            "unsupported_parameter",
            "a file reaches the model through the gateway only as its bytes: send file_data "
            "(a base64 data: URL) and filename",
        )

    @model_validator(mode="after")
    def _has_its_data(self) -> InputFile:
        if self.file_data is None:
            raise refused("invalid_value", "an input_file needs its file_data")
        return self


class AudioData(Wire):
    data: str
    format: str


class InputAudio(Wire):
    type: Literal["input_audio"]
    input_audio: AudioData


def _tagged(kinds: str, message: str) -> Discriminator:
    """A union chosen by the `type` field (a message item may leave it out); an unknown type is
    refused with `message`. Tags end in " part" or " item", never a field name, so an error's
    location can drop them (`_where`)."""

    def tag(value: Any) -> str | None:
        found = value.get("type", "message") if isinstance(value, dict) else None
        return f"{found} {kinds}" if isinstance(found, str) else None

    return Discriminator(tag, custom_error_type=UNKNOWN_TYPE, custom_error_message=message)


Part = Annotated[
    Annotated[InputText, Tag("input_text part")]
    | Annotated[InputImage, Tag("input_image part")]
    | Annotated[InputFile, Tag("input_file part")]
    | Annotated[InputAudio, Tag("input_audio part")]
    | Annotated[OutputText, Tag("output_text part")]
    | Annotated[Refusal, Tag("refusal part")],
    _tagged(
        "part",
        "a part is input_text, input_image, input_file, input_audio, output_text or refusal",
    ),
]

Role = Literal["user", "system", "developer", "assistant"]


class MessageItem(Wire):
    """A message; `id` and `status` are what an answer's output item carries when a client
    sends it back, and are not sent to the model."""

    type: Literal["message"] = "message"
    role: Role
    content: str | list[Part]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(Wire):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=256)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(Wire):
    """A function's result. A chat's tool message holds text only, so its parts are text."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=256)
    output: str | list[InputText]
    id: str | None = None
    status: str | None = None


Item = Annotated[
    Annotated[MessageItem, Tag("message item")]
    | Annotated[FunctionCallItem, Tag("function_call item")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output item")],
    _tagged(
        "item",
        "an input item is a message, function_call or function_call_output; others (reasoning, "
        "item_reference, hosted tools' calls) live on OpenAI's servers",
    ),
]


class FunctionTool(Wire):
    """A function the model may call. Any other `type` runs on OpenAI's servers (web search,
    file search, computer use, code interpreter, MCP…) and is refused."""

    type: str
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("type")
    @classmethod
    def _a_function(cls, kind: str) -> str:
        if kind != "function":
            raise refused(
                "unsupported_value",
                "{kind} tools run on OpenAI's servers; through the gateway a model calls "
                "functions only (type: function)",
                kind=kind,
            )
        return kind


class ChosenFunction(Wire):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)


class ChosenTool(Wire):
    """A `tool_choice` object: one function, or `allowed_tools` among functions."""

    type: str
    name: str | None = Field(default=None, min_length=1, max_length=64)
    mode: Literal["auto", "required"] | None = None
    tools: list[ChosenFunction] | None = None

    @field_validator("type")
    @classmethod
    def _of_functions(cls, kind: str) -> str:
        if kind not in ("function", "allowed_tools"):
            raise refused(
                "unsupported_value",
                "{kind} tools run on OpenAI's servers; through the gateway tool_choice names a "
                "function or allowed_tools of functions",
                kind=kind,
            )
        return kind

    @model_validator(mode="after")
    def _complete(self) -> ChosenTool:
        if self.type == "function" and self.name is None:
            raise refused("invalid_value", "a function tool_choice needs its name")
        if self.type == "allowed_tools" and (self.mode is None or self.tools is None):
            raise refused("invalid_value", "allowed_tools needs its mode and tools")
        return self


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("mode choice")]
    | Annotated[ChosenTool, Tag("tool choice")],
    Discriminator(lambda value: "mode choice" if isinstance(value, str) else "tool choice"),
]


class TextFormat(Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_named(self) -> TextFormat:
        if self.type == "json_schema" and (self.name is None or self.schema_ is None):
            raise refused("invalid_value", "a json_schema format needs its name and schema")
        return self


class TextConfig(Wire):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(Wire):
    """`effort` reaches the model as `reasoning_effort`. A chat returns no reasoning summary:
    `summary: auto` (the model may give none) is accepted, a summary asked for is refused."""

    effort: str | None = None
    summary: Literal["auto"] | None = None
    generate_summary: Literal["auto"] | None = None


class StreamOptions(Wire):
    """Obfuscation pads OpenAI's delta events; the gateway's carry none, asked or not."""

    include_obfuscation: bool | None = None


def _includable(name: str) -> str:
    """No answer carries reasoning items, so none has encrypted content to include."""
    if name != "reasoning.encrypted_content":
        raise refused(
            "unsupported_value",
            "the gateway cannot include {name}: its answers carry message and function_call "
            "items only",
            name=name,
        )
    return name


Includable = Annotated[str, AfterValidator(_includable)]


class ResponsesRequest(Wire):
    model: str = Field(min_length=1, max_length=200)
    input: str | list[Item]
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    service_tier: str | None = None
    metadata: dict[str, str] | None = None
    """Echoed in the answer; a chat keeps metadata only where it is stored, so not sent."""
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: Any = None
    background: bool | None = None
    truncation: Literal["disabled"] | None = None
    include: list[Includable] | None = None

    @field_validator("previous_response_id", "conversation")
    @classmethod
    def _no_state(cls, _: Any) -> None:
        raise refused("unsupported_parameter", STATELESS)

    @field_validator("store", "background")
    @classmethod
    def _not_kept(cls, kept: bool) -> bool:
        if kept:
            raise refused("unsupported_value", STATELESS)
        return kept

    @field_validator("truncation", mode="before")
    @classmethod
    def _never_truncated(cls, truncation: Any) -> Any:
        if truncation == "auto":
            raise refused(
                "unsupported_value",
                "the gateway does not drop items to fit the context window: send what fits, "
                "with truncation left out or disabled",
            )
        return truncation


def read_request(raw: Any) -> ResponsesRequest:
    """The request, or a 400 naming the first field the gateway cannot take (the Responses
    API's own path: `input[2].content[0].file_id`)."""
    try:
        return ResponsesRequest.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc.errors()) from None


def _invalid(errors: Sequence[ErrorDetails]) -> InvalidInput:
    """Our refusals first, then the error deepest in the request (a union reports a shallow
    one for each member it did not match)."""
    ours = OWN_CODES | {UNKNOWN_TYPE}
    first = max(errors, key=lambda e: (e["type"] in ours, len(e["loc"])))
    kind = first["type"]
    param = _where(first["loc"], named_last=kind == "extra_forbidden") or None
    message, code = first["msg"], kind if kind in OWN_CODES else "invalid_value"
    if kind == "extra_forbidden":
        message = (
            "the gateway answers the Responses API through a chat, which has no equivalent of "
            "this field; leave it out"
        )
        code = "unsupported_parameter"
    elif kind == UNKNOWN_TYPE:
        code = "unsupported_value"
        if isinstance(first["input"], dict):
            param, message = f"{param}.type", f"{first['input']['type']!r}: {message}"
    return InvalidInput(f"{param}: {message}" if param else message, param=param, code=code)


_LABEL = re.compile(r"\W|^str$")
"""What pydantic puts in an error's location besides field names and list positions: a union
member's label (`str`, `list[…]`, our tags such as `message item`)."""


def _where(loc: tuple[int | str, ...], named_last: bool = False) -> str:
    """`("input", "list[…]", 2, "message item", "content", …)` → `input[2].content…`; the last
    step is a field's name whatever it looks like when `named_last` (a field we do not know)."""
    where = ""
    for index, step in enumerate(loc):
        if isinstance(step, int):
            where += f"[{step}]"
        elif not _LABEL.search(step) or (named_last and index == len(loc) - 1):
            where += f".{step}" if where else step
    return where
