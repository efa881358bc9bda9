"""The two dialects an upstream may speak natively, OpenAI's Responses API and Anthropic's
Messages API, read only as far as metering needs: the usage an answer reports, the text it
generated (counted locally when a stream is cut short), and the event that ends a stream.
Everything else in a body or an event passes through unread.

Usage, as each dialect reports it, in the gateway's terms (`TokenUsage`):
- Responses: `input_tokens` (cached ones included) and `output_tokens` (reasoning included).
- Messages: `input_tokens` excludes the prompt cache, so the prompt is `input_tokens` plus
  `cache_creation_input_tokens` plus `cache_read_input_tokens`; the cache reads are the cached
  tokens. A stream reports the prompt in `message_start` and the running output count in
  `message_delta`, the last event before `message_stop`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from quartermaster.providers.base import TokenUsage

RESPONSES = "responses"
MESSAGES = "messages"
DIALECTS = (RESPONSES, MESSAGES)
RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
"""A Responses stream's last event: the whole response with its usage."""
MESSAGE_DELTA, MESSAGE_STOP = "message_delta", "message_stop"
STREAM_DELTAS = {
    "response.output_text.delta": "delta",
    "response.refusal.delta": "delta",
    "response.function_call_arguments.delta": "delta",
    "response.reasoning_summary_text.delta": "delta",
    "response.reasoning_text.delta": "delta",
}
BLOCK_DELTAS = ("text", "partial_json", "thinking")


def usage_of(dialect: str, payload: Mapping[str, Any]) -> TokenUsage | None:
    """The usage a whole answer (a `response` or a `message` object) reports."""
    raw = payload.get("usage")
    if not isinstance(raw, Mapping) or raw.get("input_tokens") is None:
        return None
    if dialect == RESPONSES:
        return TokenUsage(
            int(raw["input_tokens"]),
            int(raw.get("output_tokens") or 0),
            int((raw.get("input_tokens_details") or {}).get("cached_tokens") or 0),
            int((raw.get("output_tokens_details") or {}).get("reasoning_tokens") or 0),
        )
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    cache_write = int(raw.get("cache_creation_input_tokens") or 0)
    prompt = int(raw["input_tokens"]) + cache_read + cache_write
    return TokenUsage(prompt, int(raw.get("output_tokens") or 0), cache_read)


def text_of(dialect: str, payload: Mapping[str, Any]) -> str:
    """All a whole answer generated, as text: what a local count falls back on."""
    pieces: list[str] = []
    if dialect == RESPONSES:
        for item in payload.get("output") or ():
            pieces += [str(item.get(key) or "") for key in ("name", "arguments")]
            for part in [*(item.get("content") or ()), *(item.get("summary") or ())]:
                pieces += [str(part.get(key) or "") for key in ("text", "refusal")]
        return "".join(pieces)
    for block in payload.get("content") or ():
        pieces += [str(block.get(key) or "") for key in ("text", "thinking", "name")]
        if block.get("input") is not None:
            pieces.append(json.dumps(block["input"]))
    return "".join(pieces)


def finish_of(dialect: str, payload: Mapping[str, Any]) -> str:
    """Why a whole answer ended (the response's status, the message's stop reason)."""
    key = "status" if dialect == RESPONSES else "stop_reason"
    return str(payload.get(key) or "stop")


class StreamReader:
    """Follows one stream's events: the text each adds, the usage reported so far, and the
    terminal event (`response.completed` and its kin; a message's `message_delta`), which the
    provider holds back so the gateway can add the charge to it. An `error` event is the
    upstream failing midway: it raises."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.usage: TokenUsage | None = None
        self.terminal: dict[str, Any] | None = None
        self.finish = "stop"

    def read(self, event: dict[str, Any]) -> str:
        """The text `event` adds; sets `terminal` when it is the stream's last."""
        kind = event.get("type")
        if kind == "error":
            inner = event.get("error")
            error: Mapping[str, Any] = inner if isinstance(inner, Mapping) else event
            raise ValueError(f"the upstream failed midway: {error.get('message') or error}")
        if self.dialect == RESPONSES:
            return self._response_event(str(kind), event)
        return self._message_event(str(kind), event)

    @property
    def ended(self) -> bool:
        """Whether a stream stopping here is complete."""
        return self.terminal is not None

    def expected(self) -> str:
        return "response.completed" if self.dialect == RESPONSES else MESSAGE_STOP

    def _response_event(self, kind: str, event: dict[str, Any]) -> str:
        if kind in RESPONSE_ENDS:
            response = event.get("response") or {}
            self.terminal, self.usage = event, usage_of(RESPONSES, response)
            self.finish = finish_of(RESPONSES, response)
            return ""
        key = STREAM_DELTAS.get(kind)
        return str(event.get(key) or "") if key else ""

    def _message_event(self, kind: str, event: dict[str, Any]) -> str:
        if kind == "message_start":
            self.usage = usage_of(MESSAGES, event.get("message") or {})
        elif kind == MESSAGE_DELTA:
            self.terminal = event
            self.finish = str((event.get("delta") or {}).get("stop_reason") or "end_turn")
            self._add_output(event.get("usage") or {})
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            return "".join(str(delta.get(key) or "") for key in BLOCK_DELTAS)
        return ""

    def _add_output(self, reported: Mapping[str, Any]) -> None:
        """`message_delta` carries the output so far (and, lately, the prompt again)."""
        prompt = self.usage or TokenUsage(0)
        if reported.get("input_tokens") is not None:
            prompt = usage_of(MESSAGES, {"usage": reported}) or prompt
        output = int(reported.get("output_tokens") or 0)
        self.usage = TokenUsage(prompt.prompt_tokens, output, prompt.cached_tokens)
