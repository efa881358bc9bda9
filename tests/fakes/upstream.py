"""A fake OpenAI-compatible upstream, served in-process through `httpx.MockTransport`.

It answers chat completions and legacy completions (whole or streamed as SSE, with or without
usage), embeddings and audio transcriptions (`transcript`, whatever the file), and can misbehave
on demand: fail to accept connections a number of times, answer with an error status or a body
that is not the protocol, stall before answering or in the middle of a stream, end a stream
before `[DONE]`. It records what it was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

EMBED_DIMENSIONS = 8


@dataclass
class FakeUpstream:
    reply: str = "Hello from the fake upstream."
    prompt_tokens: int = 11
    report_usage: bool = True
    error_status: int | None = None
    error_message: str = "the fake upstream says no"
    connect_failures: int = 0
    stall_s: float = 0.0
    stall_after_chunks: int | None = None
    cut_stream: bool = False
    raw_body: bytes | None = None
    answer: dict[str, Any] | None = None
    """A whole `chat.completion` (several choices, tool calls, logprobs, usage) or
    `text_completion` to answer with instead of `reply`; streamed, it is cut into chunk events
    as OpenAI sends them."""
    transcript: str = "The fake upstream heard the pumps start at dawn."
    requests: list[httpx.Request] = field(default_factory=list)
    connect_attempts: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    @property
    def chunks(self) -> list[str]:
        """The streamed pieces of the reply; the fake counts one token per piece."""
        words = self.reply.split(" ")
        return [word if i == 0 else f" {word}" for i, word in enumerate(words)]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.connect_attempts += 1
        if self.connect_attempts <= self.connect_failures:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        if self.stall_s and self.stall_after_chunks is None:
            await asyncio.sleep(self.stall_s)
        if self.error_status is not None:
            error = {"message": self.error_message, "type": "fake_error", "code": None}
            return httpx.Response(self.error_status, json={"error": error})
        if self.raw_body is not None:
            return httpx.Response(200, content=self.raw_body)
        if request.url.path.endswith("/audio/transcriptions"):
            return httpx.Response(200, json={"text": self.transcript})
        body = json.loads(request.content)
        if request.url.path.endswith("/embeddings"):
            return httpx.Response(200, json=self._embeddings(body))
        legacy = not request.url.path.endswith("/chat/completions")
        if body.get("stream"):
            headers = {"content-type": "text/event-stream"}
            return httpx.Response(200, headers=headers, content=self._events(body, legacy))
        return httpx.Response(200, json=self._completion(body, legacy))

    def _usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def _completion(self, body: dict[str, Any], legacy: bool) -> dict[str, Any]:
        """The reply once (a legacy completion: once for each prompt and each of its `n`)."""
        if self.answer is not None:
            canned = {**self.answer, "model": body["model"]}
            return canned if self.report_usage else {**canned, "usage": None}
        answers = len(_prompts(body)) * (body.get("n") or 1) if legacy else 1
        payload: dict[str, Any] = {
            "id": "cmpl-fake" if legacy else "chatcmpl-fake",
            "object": "text_completion" if legacy else "chat.completion",
            "model": body["model"],
            "choices": [_choice(legacy, index, self.reply) for index in range(answers)],
        }
        if self.report_usage:
            payload["usage"] = self._usage(self.prompt_tokens, len(self.chunks) * answers)
        return payload

    async def _events(self, body: dict[str, Any], legacy: bool) -> AsyncIterator[bytes]:
        base = {
            "id": "cmpl-fake" if legacy else "chatcmpl-fake",
            "object": "text_completion" if legacy else "chat.completion.chunk",
            "model": body["model"],
        }
        if self.answer is not None:
            for event in _answer_events(self.answer):
                yield _event(base | event)
            if self.report_usage and body.get("stream_options", {}).get("include_usage"):
                yield _event(base | {"choices": [], "usage": self.answer["usage"]})
            yield b"data: [DONE]\n\n"
            return
        for index, piece in enumerate(self.chunks):
            if self.stall_after_chunks is not None and index == self.stall_after_chunks:
                await asyncio.sleep(self.stall_s)
            yield _event(base | {"choices": [_piece(legacy, piece, None)]})
        if self.cut_stream:
            return
        yield _event(base | {"choices": [_piece(legacy, "", "stop")]})
        wants_usage = body.get("stream_options", {}).get("include_usage")
        if self.report_usage and wants_usage:
            usage = self._usage(self.prompt_tokens, len(self.chunks))
            yield _event(base | {"choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"]
        rows = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text)}
            for i, text in reversed(list(enumerate(inputs)))
        ]
        tokens = sum(len(text.split()) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return {"object": "list", "model": body["model"], "data": rows, "usage": usage}


def fake_vector(text: str) -> list[float]:
    """A stable vector per text, so tests can check which input each vector belongs to."""
    digest = hashlib.sha256(text.encode()).digest()
    return [byte / 255 for byte in digest[:EMBED_DIMENSIONS]]


def _prompts(body: dict[str, Any]) -> list[str]:
    prompt = body["prompt"]
    return [prompt] if isinstance(prompt, str) else list(prompt)


def _choice(legacy: bool, index: int, text: str) -> dict[str, Any]:
    if legacy:
        return {"index": index, "text": text, "logprobs": None, "finish_reason": "stop"}
    message = {"role": "assistant", "content": text}
    return {"index": index, "message": message, "finish_reason": "stop"}


def _piece(legacy: bool, text: str, finish: str | None) -> dict[str, Any]:
    if legacy:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
    return {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}


def _answer_events(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion's choices as OpenAI streams them: the role, the content word by word (with
    its logprobs), each tool call's id and name then its arguments in two halves, the finish."""
    events: list[dict[str, Any]] = []
    for choice in answer["choices"]:
        events += [{"choices": [{"index": choice["index"], **part}]} for part in _parts(choice)]
    return events


def _parts(choice: dict[str, Any]) -> list[dict[str, Any]]:
    if "text" in choice:  # a legacy completion's: its text word by word, then the finish
        pieces = [f" {word}" if i else word for i, word in enumerate(choice["text"].split(" "))]
        texts = [{"text": piece, "logprobs": None} for piece in pieces]
        finish = {"text": "", "logprobs": None, "finish_reason": choice["finish_reason"]}
        return [{"finish_reason": None} | text for text in [*texts, finish]]
    message, logprobs = choice["message"], choice.get("logprobs")
    parts: list[dict[str, Any]] = [{"delta": {"role": "assistant", "content": ""}}]
    words = [word for word in (message.get("content") or "").split(" ") if word]
    for i, word in enumerate(words):
        parts.append({"delta": {"content": word if i == 0 else f" {word}"}, "logprobs": logprobs})
    for position, call in enumerate(message.get("tool_calls") or ()):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        name = {"name": call["function"]["name"], "arguments": arguments[:half]}
        head = {"index": position, "id": call["id"], "type": "function", "function": name}
        rest = {"index": position, "function": {"arguments": arguments[half:]}}
        parts += [{"delta": {"tool_calls": [head]}}, {"delta": {"tool_calls": [rest]}}]
    parts.append({"delta": {}, "finish_reason": choice["finish_reason"]})
    return [{"finish_reason": None} | part for part in parts]


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()
