"""A Responses API request as the OpenAI chat body every route meters (gateway/chat_flow.py),
and the chat's refusals named back in the caller's terms.

`instructions` become a leading system message, `input` items messages (a model's function
calls join the assistant message before them, as a chat's `tool_calls`; their outputs become
`tool` messages), function tools chat tools, `max_output_tokens` the chat's
`max_completion_tokens`, `text.format` its `response_format`, `reasoning.effort` its
`reasoning_effort`. Only what the caller set is sent, so a model that would ignore a field still
refuses it by its name (providers: `unsupported`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.responses_wire import (
    ChosenTool,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputAudio,
    InputFile,
    InputImage,
    InputText,
    MessageItem,
    OutputText,
    Part,
    Refusal,
    ResponsesRequest,
    TextFormat,
)

SAME_NAMES = (
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
)
"""Fields a chat takes by the same name and meaning."""

CHAT_NAMES = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
    "reasoning_effort": "reasoning.effort",
    "verbosity": "text.verbosity",
    "messages": "input",
}
"""A chat's field → the Responses API's, for the chat's refusals."""

_MESSAGE = re.compile(r"messages(?:\[(\d+)\]|\.(\d+))(?:\.content(?:\[(\d+)\]|\.(\d+)))?")


@dataclass(frozen=True)
class Origin:
    """Where a chat message came from: its item (`input[3]`), and where its parts are."""

    item: str
    parts: str


@dataclass(frozen=True)
class ChatBody:
    body: dict[str, Any]
    origins: tuple[Origin, ...]
    """One per message of the body."""

    def renamed(self, refusal: InvalidInput) -> InvalidInput:
        """The chat's refusal, naming the caller's field (`messages[1].content[0]` →
        `input[0].content[0]`, `max_tokens` → `max_output_tokens`)."""
        if refusal.param is None:
            return refusal
        param = self._param(refusal.param)
        return replace(refusal, param=param, message=refusal.message.replace(refusal.param, param))

    def _param(self, chat_param: str) -> str:
        found = _MESSAGE.match(chat_param)
        if found is None:
            head = re.split(r"[.\[]", chat_param, maxsplit=1)[0]
            return CHAT_NAMES.get(head, head)
        origin = self.origins[int(found[1] or found[2])]
        part = found[3] or found[4]
        return origin.item if part is None else f"{origin.parts}[{part}]"


def to_chat_body(request: ResponsesRequest) -> ChatBody:
    messages, origins = _conversation(request)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:  # without tools, a tool choice asks nothing (and a chat refuses one)
        body["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    text = request.text
    if text is not None and text.format is not None:
        body["response_format"] = _response_format(text.format)
    if text is not None and text.verbosity is not None:
        body["verbosity"] = text.verbosity
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning_effort"] = request.reasoning.effort
    given = request.model_dump(include=set(SAME_NAMES), exclude_none=True)
    return ChatBody(body | given, tuple(origins))


def _conversation(request: ResponsesRequest) -> tuple[list[dict[str, Any]], list[Origin]]:
    messages: list[dict[str, Any]] = []
    origins: list[Origin] = []
    if request.instructions is not None:
        messages.append({"role": "system", "content": request.instructions})
        origins.append(Origin("instructions", "instructions"))
    if isinstance(request.input, str):
        messages.append({"role": "user", "content": request.input})
        origins.append(Origin("input", "input"))
        return messages, origins
    for index, item in enumerate(request.input):
        where = f"input[{index}]"
        if isinstance(item, FunctionCallItem):
            if messages and messages[-1]["role"] == "assistant":  # the model's turn goes on
                messages[-1].setdefault("tool_calls", []).append(_call(item))
                continue
            messages.append({"role": "assistant", "content": None, "tool_calls": [_call(item)]})
            origins.append(Origin(where, where))
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(
                {"role": "tool", "tool_call_id": item.call_id, "content": _output(item)}
            )
            origins.append(Origin(where, f"{where}.output"))
        else:
            messages.append({"role": item.role, "content": _content(item)})
            origins.append(Origin(where, f"{where}.content"))
    return messages, origins


def _content(item: MessageItem) -> str | list[dict[str, Any]]:
    if isinstance(item.content, str):
        return item.content
    return [_part(part) for part in item.content]


def _part(part: Part) -> dict[str, Any]:
    if isinstance(part, InputText | OutputText):
        return {"type": "text", "text": part.text}
    if isinstance(part, Refusal):
        return {"type": "refusal", "refusal": part.refusal}
    if isinstance(part, InputImage):
        image = {"url": part.image_url} | ({"detail": part.detail} if part.detail else {})
        return {"type": "image_url", "image_url": image}
    if isinstance(part, InputFile):
        return {"type": "file", "file": part.model_dump(include={"file_data", "filename"})}
    assert isinstance(part, InputAudio)
    return {"type": "input_audio", "input_audio": part.input_audio.model_dump()}


def _call(item: FunctionCallItem) -> dict[str, Any]:
    function = {"name": item.name, "arguments": item.arguments}
    return {"id": item.call_id, "type": "function", "function": function}


def _output(item: FunctionCallOutputItem) -> str | list[dict[str, Any]]:
    if isinstance(item.output, str):
        return item.output
    return [_part(part) for part in item.output]


def _tool(tool: FunctionTool) -> dict[str, Any]:
    function = tool.model_dump(include={"name", "description", "parameters", "strict"})
    return {"type": "function", "function": {k: v for k, v in function.items() if v is not None}}


def _tool_choice(choice: str | ChosenTool) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.type == "function":
        return {"type": "function", "function": {"name": choice.name}}
    named = [{"type": "function", "function": {"name": f.name}} for f in choice.tools or ()]
    return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": named}}


def _response_format(text_format: TextFormat) -> dict[str, Any]:
    if text_format.type != "json_schema":
        return {"type": text_format.type}
    schema = text_format.model_dump(
        include={"name", "schema_", "description", "strict"}, by_alias=True, exclude_none=True
    )
    return {"type": "json_schema", "json_schema": schema}
