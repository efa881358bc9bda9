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
