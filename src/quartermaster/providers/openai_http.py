"""A model behind an OpenAI-compatible HTTP upstream: OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp's server, and Anthropic's and Gemini's compatible endpoints.

Requests go straight to the transport (aiohttp in production, `httpx.MockTransport` in tests):
httpx's client layer — URL merging, cookies, auth and redirect handling, none of which an
upstream call uses — cost about 0.5 ms of CPU per call. The URLs, headers and timeouts are
built once per provider instead.

httpx and JSON errors are translated here, in `_translated`, into the `ProviderError` tree.
Only connection failures are retried: the request never reached the upstream, so it cannot
have been charged or half-generated. Timeouts are enforced here too (per read, like httpx's read
timeout), so they hold for any transport, including the fake upstream used in tests.

A call in a dialect the upstream speaks natively (`responses = true`, `kind = "anthropic"`) is
posted to its own path as the caller wrote it; providers/native.py reads its usage and events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from quartermaster import __version__
from quartermaster.providers import openai_wire
from quartermaster.providers.aiohttp_transport import AiohttpTransport
from quartermaster.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbedResult,
    NativeCall,
    TokenUsage,
    Transcript,
    TranscriptionRequest,
)
from quartermaster.providers.config import ANTHROPIC_VERSION, UpstreamConfig
from quartermaster.providers.errors import (
    ProviderBadResponse,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from quartermaster.providers.native import RESPONSES, StreamReader, finish_of, text_of, usage_of
from quartermaster.providers.sse import DONE, SSEDecoder

CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
PATHS = (
    "chat/completions",
    "completions",
    "embeddings",
    "responses",
    "messages",
    "audio/transcriptions",
)
DEFAULT_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Accept-Encoding": "gzip, deflate",
    "Content-Type": "application/json",
    "User-Agent": f"quartermaster/{__version__}",
}


class OpenAIHTTPProvider:
    """One catalog model served by one upstream, with its own connection pool."""

    def __init__(
        self,
        config: UpstreamConfig,
        model: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._model = model
        self._api_key = config.api_key()
        self._transport = transport or AiohttpTransport()
        self._headers = httpx.Headers(DEFAULT_HEADERS)
        self._headers.update(_headers(config))  # the operator's, whatever their case, win
        timeout = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s)
        self._extensions = {"timeout": timeout.as_dict()}
        self._urls = {path: _url(config, path) for path in PATHS}

    async def chat(self, request: ChatRequest) -> ChatResult:
        if request.native is not None:
            return await self._native_whole(request.native)
        async with self._open(request.endpoint, self._chat_body(request, stream=False)) as reply:
            payload = await self._read_json(reply)
        with self._translated():
            choices = payload["choices"]
            return ChatResult(
                content=openai_wire.generated(choices, "message"),
                finish_reason=choices[0].get("finish_reason") or "stop",
                usage=openai_wire.usage(payload.get("usage")),
                model=payload.get("model", self._model),
                raw=payload,
            )

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The upstream's events as they come, each with the text it adds (for a local count
        when no usage is reported); then the final chunk, carrying the usage event."""
        if request.native is not None:
            async for chunk in self._native_stream(request.native):
                yield chunk
            return
        finish: str | None = None
        usage: TokenUsage | None = None
        usage_event: dict[str, Any] | None = None
        async with self._open(request.endpoint, self._chat_body(request, stream=True)) as reply:
            async for event in self._events(reply):
                with self._translated():
                    choices = event.get("choices") or []
                    if openai_wire.usage(event.get("usage")) is not None:
                        usage, usage_event = openai_wire.usage(event.get("usage")), event
                    finish = next(
                        (c["finish_reason"] for c in choices if c.get("finish_reason")), finish
                    )
                    text = openai_wire.generated(choices, "delta")
                if choices:
                    yield ChatChunk(delta=text, raw=event)
        yield ChatChunk(finish_reason=finish or "stop", usage=usage, raw=usage_event)

    async def embed(self, inputs: list[str]) -> EmbedResult:
        body = {"model": self._model, "input": inputs, "encoding_format": "float"}
        async with self._open("embeddings", body) as reply:
            payload = await self._read_json(reply)
        with self._translated():
            rows = sorted(payload["data"], key=lambda row: row["index"])
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
            if len(vectors) != len(inputs):
                raise ValueError(f"{len(vectors)} vectors for {len(inputs)} inputs")
            return EmbedResult(vectors, openai_wire.usage(payload.get("usage")), self._model)

    async def _native_whole(self, call: NativeCall) -> ChatResult:
        body = self._native_body(call, stream=False)
        async with self._open(call.dialect, body, call.headers) as reply:
            payload = await self._read_json(reply)
        with self._translated():
            return ChatResult(
                content=text_of(call.dialect, payload),
                finish_reason=finish_of(call.dialect, payload),
                usage=usage_of(call.dialect, payload),
                model=str(payload.get("model") or self._model),
                raw=payload,
            )

    async def _native_stream(self, call: NativeCall) -> AsyncIterator[ChatChunk]:
        """The upstream's events as they come, but for the terminal one (and a message's
        `message_stop`, which only follows it), carried by the final chunk with the usage."""
        reader = StreamReader(call.dialect)
        body = self._native_body(call, stream=True)
        async with self._open(call.dialect, body, call.headers) as reply:
            async for event in self._events(reply, until_done=False):
                with self._translated():
                    text = reader.read(event)
                if not reader.ended:
                    yield ChatChunk(delta=text, raw=event)
        if not reader.ended:
            raise ProviderBadResponse(
                f"the stream ended before {reader.expected()}", self._config.name
            )
        yield ChatChunk(finish_reason=reader.finish, usage=reader.usage, raw=reader.terminal)

    def speaks(self, dialect: str) -> bool:
        return self._config.speaks(dialect)

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        """OpenAI's `audio/transcriptions`: the file as multipart form data, JSON back. Progress
        is all or nothing: the upstream tells nothing until it is done."""
        request.report(0)
        form = httpx.Request(
            "POST",
            self._urls["audio/transcriptions"],
            data={"model": self._model, "response_format": "json"},
            files={"file": (request.filename, request.audio)},
        )
        async with self._open("audio/transcriptions", form) as reply:
            payload = await self._read_json(reply)
        with self._translated():
            transcript = Transcript(str(payload["text"]), self._model)
        request.report(request.total_s)
        return transcript

    def unsupported(self, body: Mapping[str, Any]) -> None:
        """Every field is forwarded; the upstream refuses what it does not know."""

    def tokenizer(self) -> None:
        """Counted by the model's name (providers/tokenizer.py)."""

    async def close(self) -> None:
        await self._transport.aclose()

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The caller's body with the upstream's model name, usage asked for on streams, and
        the upstream's policy (fields it forces or removes) applied last."""
        body = request.wire_body() | {"model": self._model, "stream": stream}
        if stream:
            asked = body.get("stream_options")
            body["stream_options"] = (asked if isinstance(asked, dict) else {}) | {
                "include_usage": True
            }
        return self._with_policy(body)

    def _native_body(self, call: NativeCall, *, stream: bool) -> dict[str, Any]:
        """The caller's body with the upstream's model name; a response is not stored upstream
        unless the caller said otherwise (the gateway answers with its own id, so a stored
        response could never be fetched)."""
        body = dict(call.body) | {"model": self._model, "stream": stream}
        if call.dialect == RESPONSES:
            body.setdefault("store", False)
        return self._with_policy(body)

    def _with_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        """The upstream's policy, applied last: the fields it removes, then those it forces."""
        for name in self._config.remove:
            body.pop(name, None)
        return body | dict(self._config.force)

    @asynccontextmanager
    async def _open(
        self,
        path: str,
        body: dict[str, Any] | httpx.Request,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send a JSON body (or a prepared form) with connect retries and a deadline for the
        answer's head; fail on non-2xx. `headers`: the caller's, for a dialect that defines
        them; the operator's win."""
        if isinstance(body, httpx.Request):
            sent = httpx.Headers(self._headers)
            sent["Content-Type"] = body.headers["Content-Type"]
            content = body.read()
        else:
            sent = _merged(headers, self._headers, self._config) if headers else self._headers
            content = json.dumps(body, separators=(",", ":")).encode()
        request = httpx.Request(
            "POST",
            self._urls[path],
            headers=sent,
            content=content,
            extensions=self._extensions,
        )
        deadline_s = self._config.connect_timeout_s + self._config.read_timeout_s
        with self._translated():
            async with asyncio.timeout(deadline_s):
                response = await self._send_with_retries(request)
        try:
            if response.is_error:
                await self._raise_for_status(response)
            yield response
        finally:
            await response.aclose()

    async def _send_with_retries(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(self._config.connect_retries):
            try:
                return await self._transport.handle_async_request(request)
            except CONNECT_ERRORS:
                await asyncio.sleep(self._config.retry_backoff_s * 2**attempt)
        return await self._transport.handle_async_request(request)

    async def _raise_for_status(self, response: httpx.Response) -> None:
        with self._translated():
            await self._read(response)
        message = openai_wire.redacted(openai_wire.error_message(response), self._api_key)
        if response.is_client_error:
            raise ProviderRejected(message, self._config.name, status=response.status_code)
        raise ProviderBadResponse(
            f"upstream failed with HTTP {response.status_code}: {message}",
            self._config.name,
            status=response.status_code,
        )

    async def _read(self, response: httpx.Response) -> bytes:
        async with asyncio.timeout(self._config.read_timeout_s):
            return await response.aread()

    async def _read_json(self, response: httpx.Response) -> dict[str, Any]:
        with self._translated():
            payload = json.loads(await self._read(response))
            if not isinstance(payload, dict):
                raise ValueError("the body is not a JSON object")
            return payload

    async def _events(
        self, response: httpx.Response, *, until_done: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON events of an SSE stream, up to `[DONE]` (or its end, for the dialects that
        send none: `until_done=False`); each line must come in time."""
        decoder = SSEDecoder()
        lines = response.aiter_lines()
        with self._translated():
            while True:
                try:
                    async with asyncio.timeout(self._config.read_timeout_s):
                        line = await anext(lines)
                except StopAsyncIteration:
                    line = None
                data = decoder.feed(line or "")
                if data == DONE:
                    return
                if data is not None:
                    event = json.loads(data)
                    if not isinstance(event, dict):
                        raise ValueError(f"a stream event is not a JSON object: {data[:80]}")
                    yield event
                elif line is None:
                    if until_done:
                        raise ValueError("the stream ended before [DONE]")
                    return

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The one table from foreign failures to the provider error tree."""
        name = self._config.name
        try:
            yield
        except ProviderError:
            raise
        except CONNECT_ERRORS as exc:
            raise ProviderUnavailable(f"cannot connect to {self._config.base_url}", name) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            limit = self._config.read_timeout_s
            raise ProviderTimeout(f"no answer within {limit:g} s", name) from exc
        except httpx.HTTPError as exc:
            raise ProviderBadResponse(f"transport failed: {exc}", name) from exc
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderBadResponse(f"malformed upstream response: {exc!r}", name) from exc


def _url(config: UpstreamConfig, path: str) -> httpx.URL:
    """`path` under the base URL (its own path kept, as in `…/openai/deployments/x`), with the
    configured query (Azure's `api-version`)."""
    return httpx.URL(f"{config.base_url.rstrip('/')}/{path}").copy_merge_params(dict(config.query))


def _headers(config: UpstreamConfig) -> dict[str, str]:
    headers = dict(config.headers)
    if config.kind == "anthropic" and "anthropic-version" not in {h.lower() for h in headers}:
        headers["anthropic-version"] = ANTHROPIC_VERSION
    key = config.api_key()
    if key is not None:
        if config.auth_header == "authorization":
            headers["Authorization"] = f"Bearer {key}"
        else:
            headers[str(config.auth_header)] = key
    return headers


def _merged(
    caller: Mapping[str, str], ours: httpx.Headers, config: UpstreamConfig
) -> httpx.Headers:
    """The caller's dialect headers under ours; those the operator configured win over both."""
    merged = httpx.Headers(ours)
    for name, value in caller.items():
        if name.lower() not in {h.lower() for h in config.headers}:
            merged[name] = value
    return merged
