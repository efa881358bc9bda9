"""The Responses API's `response` object, made from a chat's answer: a `message` item with the
text (and any refusal), a `function_call` item per tool call, and the chat's usage under the
Responses API's names, with `tokens_charged` (what the call cost in platform tokens) beside
them. The stream (gateway/responses_events.py) builds the same items piece by piece.

`output_text`, the joined text, is the SDKs' convenience: they compute it, the API never sends
it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quartermaster.gateway.responses_wire import ResponsesRequest

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""A chat's finish reason → why the response is incomplete."""


@dataclass(frozen=True)
class Head:
    """What every answer to one request carries."""

    response_id: str
    created_at: int
    model: str


def response_id(request_id: str) -> str:
    """`resp_<hex>`, from the ledger's request id of the same call (`resp-<hex>`)."""
    return f"resp_{request_id.rpartition('-')[2]}"


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def outcome(finish_reason: str | None) -> tuple[str, str | None]:
    """The response's status and, when incomplete, why."""
    reason = INCOMPLETE.get(finish_reason or "")
    return ("incomplete" if reason else "completed"), reason


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def message_item(item_id: str, parts: Sequence[Mapping[str, Any]], status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": list(parts),
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def usage_of(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A chat's usage (prompt/completion tokens and their details) as the Responses API names
    it, with the gateway's `tokens_charged`."""
    if not usage:
        return None
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    input_tokens, output_tokens = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": prompt.get("cached_tokens") or 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens", input_tokens + output_tokens),
        "tokens_charged": usage.get("tokens_charged"),
    }


def response_object(
    request: ResponsesRequest,
    head: Head,
    output: Sequence[Mapping[str, Any]] = (),
    usage: Mapping[str, Any] | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """The response with its request's settings echoed; in progress until a finish reason."""
    status, reason = outcome(finish_reason) if finish_reason else ("in_progress", None)
    return {
        "id": head.response_id,
        "object": "response",
        "created_at": head.created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason else None,
        "model": head.model,
        "output": list(output),
        "usage": usage_of(usage),
        **_settings(request),
    }


def _settings(request: ResponsesRequest) -> dict[str, Any]:
    """What the request asked, as the Responses API echoes it (its defaults when not asked)."""
    reasoning = request.reasoning
    choice = request.tool_choice or "auto"
    return {
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "metadata": request.metadata or {},
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": {
            "effort": reasoning.effort if reasoning else None,
            "summary": reasoning.summary if reasoning else None,
        },
        "store": False,
        "background": False,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "text": _text_settings(request),
        "tool_choice": choice if isinstance(choice, str) else choice.model_dump(exclude_none=True),
        "tools": [tool.model_dump() for tool in request.tools or ()],
        "truncation": "disabled",
        "user": request.user,
    }


def _text_settings(request: ResponsesRequest) -> dict[str, Any]:
    given = request.text.model_dump(by_alias=True, exclude_none=True) if request.text else {}
    return {"format": {"type": "text"}} | given


def from_chat_completion(
    completion: Mapping[str, Any], request: ResponsesRequest, head: Head
) -> dict[str, Any]:
    """The `response` for a whole `chat.completion` (one choice: the Responses API has no `n`)."""
    choice = completion["choices"][0]
    message, finish_reason = choice["message"], choice.get("finish_reason") or "stop"
    calls, refusal = message.get("tool_calls") or (), message.get("refusal")
    status = "incomplete" if outcome(finish_reason)[1] else "completed"
    parts = []
    if message.get("content") or not (calls or refusal):
        parts.append(text_part(message.get("content") or ""))
    if refusal:
        parts.append(refusal_part(refusal))
    output = [message_item(new_item_id("msg"), parts, status)] if parts else []
    output += [
        function_call_item(
            new_item_id("fc"),
            call["id"],
            call["function"]["name"],
            call["function"]["arguments"],
            status,
        )
        for call in calls
    ]
    return response_object(request, head, output, completion.get("usage"), finish_reason)
