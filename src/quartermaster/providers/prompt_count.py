"""The prompt of an OpenAI chat body as its upstream bills it, counted before the call so the hold
is an upper bound: every message with its framing, tool definitions, the tool calls and results
of the conversation, a response schema, and bounds for what text cannot say (images, audio,
files).

Text is counted with the model's tokenizer (`Tokenizer.count_messages` frames the messages the
way the model does: OpenAI's rules, or the embedded model's chat template). Media are bounded:
an image whose bytes are in the request by its pixel size (providers/images.py), an image by URL
at the model's most expensive image, audio at 10 tokens a second of the lowest bitrate a codec
sends (100 bytes a token), a file at the whole context window — its pages are read upstream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quartermaster.domain.errors import InvalidInput
from quartermaster.providers import images
from quartermaster.providers.base import ChatMessage
from quartermaster.providers.tokenizer import Tokenizer

TOOL_CALL_OVERHEAD = 7
"""Tokens around one tool call or one tool definition beyond its JSON (OpenAI frames them)."""
AUDIO_BYTES_PER_TOKEN = 100
TEXT_PARTS = frozenset({"text", "input_text", "refusal"})


@dataclass(frozen=True)
class PromptCount:
    text: int
    """Counted: messages, tool definitions and calls, the response schema."""
    media: int = 0
    """Bounded: images, audio and files."""

    @property
    def total(self) -> int:
        return self.text + self.media


@dataclass(frozen=True)
class MediaBounds:
    """What the catalog says of the model's media (services/catalog: `image_tokens`)."""

    image_tokens: int
    context_window: int

    @property
    def image_by_url(self) -> int:
        return self.image_tokens or self.context_window


def text_messages(messages: Iterable[Mapping[str, Any]]) -> tuple[ChatMessage, ...]:
    """Each message's role, name and text (its text parts joined), as the embedded model and
    the tokenizer's framing read them."""
    return tuple(
        ChatMessage(str(m.get("role", "")), message_text(m.get("content")), m.get("name"))
        for m in messages
    )


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        str(part.get("text") or part.get("refusal") or "")
        for part in content
        if isinstance(part, Mapping) and part.get("type") in TEXT_PARTS
    )


def count_prompt(tokenizer: Tokenizer, body: Mapping[str, Any], bounds: MediaBounds) -> PromptCount:
    """The prompt tokens of `body` (an OpenAI chat body) as an upper bound."""
    messages: Sequence[Mapping[str, Any]] = body.get("messages") or ()
    text = tokenizer.count_messages(text_messages(messages))
    text += sum(_calls(tokenizer, message) for message in messages)
    for field in ("tools", "functions"):
        definitions = body.get(field) or ()
        text += sum(_json_tokens(tokenizer, d) + TOOL_CALL_OVERHEAD for d in definitions)
    schema = body.get("response_format")
    if isinstance(schema, Mapping) and schema.get("type") == "json_schema":
        text += _json_tokens(tokenizer, schema.get("json_schema")) + TOOL_CALL_OVERHEAD
    media = sum(
        _media(part, f"messages[{i}].content[{j}]", bounds)
        for i, message in enumerate(messages)
        for j, part in enumerate(_parts(message))
    )
    return PromptCount(text, media)


def _calls(tokenizer: Tokenizer, message: Mapping[str, Any]) -> int:
    """A message's tool calls (name, id and arguments) and a tool result's call id."""
    calls = [*(message.get("tool_calls") or ()), message.get("function_call") or {}]
    tokens = tokenizer.count(str(message.get("tool_call_id") or ""))
    for call in calls:
        function = call.get("function", call) if isinstance(call, Mapping) else {}
        pieces = (call.get("id"), function.get("name"), function.get("arguments"))
        tokens += sum(tokenizer.count(str(piece)) for piece in pieces if piece)
        tokens += TOOL_CALL_OVERHEAD if function else 0
    return tokens


def _parts(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = message.get("content")
    return [p for p in content if isinstance(p, Mapping)] if isinstance(content, list) else []


def _media(part: Mapping[str, Any], where: str, bounds: MediaBounds) -> int:
    kind = part.get("type")
    if kind == "image_url":
        return _image(part.get("image_url") or {}, f"{where}.image_url", bounds)
    if kind == "input_audio":
        data = str((part.get("input_audio") or {}).get("data") or "")
        return math.ceil(len(data) * 3 / 4 / AUDIO_BYTES_PER_TOKEN)
    if kind == "file":
        return bounds.context_window
    return 0


def _image(image: Mapping[str, Any], where: str, bounds: MediaBounds) -> int:
    url = str(image.get("url") or "")
    if not url.startswith("data:"):
        return bounds.image_by_url
    try:
        width, height = images.pixel_size(images.data_url_bytes(url))
    except images.NotAnImage as exc:
        raise InvalidInput(f"{where}: {exc}", param=where) from None
    detail = str(image.get("detail") or "auto")
    return images.image_tokens(width, height, detail, bounds.image_by_url)


def _json_tokens(tokenizer: Tokenizer, value: Any) -> int:
    return tokenizer.count(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
