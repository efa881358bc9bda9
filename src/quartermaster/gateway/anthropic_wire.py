"""Anthropic's Messages request (anthropic_request.py) as the OpenAI chat body it becomes, so
that it is checked, held, forwarded and settled on the one path every chat takes
(gateway/chat_flow.py).

Some things are accepted and left out on purpose: `cache_control` (the gateway caches nothing;
an upstream's own prompt cache still shows in `cache_read_input_tokens`), and what earlier
answers carried beside their text: thinking blocks (Anthropic's API leaves them out of the
context too) and citations. `top_k`, which OpenAI's chat has not, is forwarded as `top_k`:
upstreams that sample with it (vLLM, llama.cpp's server) honour it, the others and the embedded
model refuse it by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from quartermaster.domain.errors import InvalidInput
from quartermaster.gateway.anthropic_request import (
    Base64Image,
    Base64Pdf,
    Block,
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    PlainText,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    UrlImage,
)

CHAT_NAMES = {
    "stop": "stop_sequences",
    "user": "metadata.user_id",
    "parallel_tool_calls": "tool_choice.disable_parallel_tool_use",
    "max_completion_tokens": "max_tokens",
}
"""A chat's field → Anthropic's, for the chat's refusals; the others have the same name."""

_INDEX = re.compile(r"\.(\d+)")
_MESSAGE = re.compile(
    r"messages\[(?P<message>\d+)\]"
    r"(?:\.content\[(?P<part>\d+)\]|\.(?P<calls>tool_calls)(?:\[(?P<call>\d+)\])?)?.*"
)


@dataclass(frozen=True)
class Origin:
    """Where a chat message came from: the message or block that names it, the block behind
    each of its parts, and the `tool_use` block behind each of its tool calls."""

    message: str
    parts: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatBody:
    body: dict[str, Any]
    origins: tuple[Origin, ...]
    """One per message of the body."""

    def renamed(self, refusal: InvalidInput) -> InvalidInput:
        """The chat's refusal, naming the caller's field (`messages[2].content[0]` →
        `messages[1].content[3]`, `stop` → `stop_sequences`)."""
        if refusal.param is None:
            return refusal
        param = self._param(refusal.param)
        said = refusal.message.replace(refusal.param, param, 1)  # where it names the field
        return replace(refusal, param=param, message=said)

    def _param(self, chat_param: str) -> str:
        bracketed = _INDEX.sub(r"[\1]", chat_param)
        found = _MESSAGE.fullmatch(bracketed)
        if found is None or int(found["message"]) >= len(self.origins):
            return CHAT_NAMES.get(chat_param, bracketed)
        origin = self.origins[int(found["message"])]
        if found["part"] is not None:
            return _at(origin.parts, int(found["part"])) or origin.message
        if found["calls"] is not None:
            return _at(origin.calls, int(found["call"] or 0)) or origin.message
        return origin.message


def _at(paths: tuple[str, ...], index: int) -> str | None:
    return paths[index] if index < len(paths) else None


def chat_prompt(request: CountTokensRequest) -> ChatBody:
    """The prompt as an OpenAI chat body: the model, the messages and the tools."""
    messages, origins = _conversation(request)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.tool_choice.disable_parallel_tool_use and request.tools:
            body["parallel_tool_calls"] = False
    return ChatBody(body, tuple(origins))


def to_chat_body(request: MessagesRequest) -> ChatBody:
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
    prompt = chat_prompt(request)
    given = {name: value for name, value in generation.items() if value is not None}
    return replace(prompt, body=prompt.body | given)


Said = list[tuple[dict[str, Any], Origin]]
"""Chat messages, each with where it came from."""


def _conversation(request: CountTokensRequest) -> tuple[list[dict[str, Any]], list[Origin]]:
    said: Said = []
    if request.system:
        parts = [_text(block) for block in request.system]
        where = tuple(f"system[{index}]" for index in range(len(parts)))
        said.append(({"role": "system", "content": _content(parts)}, Origin("system", where)))
    for index, message in enumerate(request.messages):
        turn = _user if message.role == "user" else _assistant
        said += turn(message.content, f"messages[{index}]")
    return [message for message, _ in said], [origin for _, origin in said]


def _user(blocks: list[Block], where: str) -> Said:
    """The tool results first, each a `tool` message right after the assistant's calls (their
    images and documents, which a tool message cannot hold, go to the user message after
    them), then the user's own text, images and documents."""
    results: Said = []
    parts: list[dict[str, Any]] = []
    behind: list[str] = []
    for index, block in enumerate(blocks):
        here = f"{where}.content[{index}]"
        if isinstance(block, ToolResultBlock):
            texts = [_text(part) for part in block.content if isinstance(part, TextBlock)]
            if block.is_error:
                texts.insert(0, {"type": "text", "text": "Error: "})
            content = _content(texts) if texts else ""
            said = {"role": "tool", "tool_call_id": block.tool_use_id, "content": content}
            results.append((said, Origin(here)))
            for inner, part in enumerate(block.content):
                if not isinstance(part, TextBlock):
                    parts.append(_part(part, f"{here}.content[{inner}]"))
                    behind.append(f"{here}.content[{inner}]")
        else:
            parts.append(_part(block, here))
            behind.append(here)
    if not parts:
        return results
    return [*results, ({"role": "user", "content": _content(parts)}, Origin(where, tuple(behind)))]


def _assistant(blocks: list[Block], where: str) -> Said:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    origin = Origin(where)
    for index, block in enumerate(blocks):
        here = f"{where}.content[{index}]"
        if isinstance(block, TextBlock):
            texts.append(_text(block))
            origin = replace(origin, parts=(*origin.parts, here))
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, separators=(",", ":"), ensure_ascii=False)
            function = {"name": block.name, "arguments": arguments}
            calls.append({"id": block.id, "type": "function", "function": function})
            origin = replace(origin, calls=(*origin.calls, here))
        elif not isinstance(block, ThinkingBlock | RedactedThinkingBlock):
            raise _misplaced(block, here, "an assistant")
    if not calls:
        return [({"role": "assistant", "content": _content(texts) if texts else ""}, origin)]
    content = _content(texts) if texts else None  # OpenAI's calls alone carry no content
    return [({"role": "assistant", "content": content, "tool_calls": calls}, origin)]


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
