"""Reading OpenAI's answers: the usage object with its details, the text an answer generated
(what a local count falls back on when no usage came), and an error's message with the
upstream key taken out."""

from __future__ import annotations

from typing import Any

import httpx

from quartermaster.providers.base import TokenUsage

ERROR_TEXT_LIMIT = 500


def redacted(text: str, key: str | None) -> str:
    """Upstreams echo a rejected key in their error ("Incorrect API key provided: sk-…"); the
    message goes on to our caller, the key must not."""
    return text.replace(key, "[redacted]") if key else text


def usage(raw: Any) -> TokenUsage | None:
    """OpenAI's usage object, with the cached and reasoning parts when the upstream gives them."""
    if not isinstance(raw, dict) or raw.get("prompt_tokens") is None:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return TokenUsage(
        int(raw["prompt_tokens"]),
        int(raw.get("completion_tokens") or 0),
        int(prompt_details.get("cached_tokens") or 0),
        int(completion_details.get("reasoning_tokens") or 0),
    )


def generated(choices: list[Any], key: str) -> str:
    """All the text the choices hold under `key` (`message`, or a stream's `delta`): content,
    refusals and tool calls' names and arguments, or a legacy completion's `text` — what a
    local count falls back on."""
    pieces: list[str] = []
    for choice in choices:
        pieces.append(str(choice.get("text") or ""))
        part = choice.get(key) or {}
        pieces += [str(part.get(field) or "") for field in ("content", "refusal")]
        calls = [*(part.get("tool_calls") or ()), part.get("function_call") or {}]
        for call in calls:
            function = call.get("function", call) if isinstance(call, dict) else {}
            pieces += [str(function.get(field) or "") for field in ("name", "arguments")]
    return "".join(pieces)


def error_message(response: httpx.Response) -> str:
    """OpenAI's `{"error": {"message": ...}}` when present, else the start of the body."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:ERROR_TEXT_LIMIT]
    except (ValueError, AttributeError):
        pass
    return response.text[:ERROR_TEXT_LIMIT] or response.reason_phrase
