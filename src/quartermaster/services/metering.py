"""Metering a model call: check it against the model, count the prompt offline, reserve the worst
case, call the provider, and settle what was really used — on every exit path.

A call the provider fails before producing anything is released (nothing charged). A stream cut
short, by the client or by the upstream, is settled for what was generated so far. A finished
call (a chat or embeddings) is booked in a task of its own (services/settlements.py), started
before the answer goes out: the answer already carries the charge (the hold's rates fix it),
and neither the caller's latency nor a disconnect after the answer touches the booking. Releases
run shielded from cancellation, so a disconnect can never leave a hold to the sweeper.

Errors: the ledger's (QuotaExceeded, PermissionDenied for banned/unpaid/no pool), InvalidInput for
requests the model cannot take (param names the field), NotFound for unknown models, and the
providers' ProviderError tree, re-raised after the hold is released.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from quartermaster.domain import capabilities, holds, usage_details
from quartermaster.domain.errors import InvalidInput, NotFound
from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.domain.types import ModelKind
from quartermaster.providers import prompt_count
from quartermaster.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    NativeCall,
    Provider,
    Sampling,
    TokenUsage,
)
from quartermaster.providers.completion_count import Completion
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.providers.tokenizer import Tokenizer, tokenizer_for_model
from quartermaster.services import catalog, ledger
from quartermaster.services.catalog import cache
from quartermaster.services.context import Context
from quartermaster.services.datasets import retrieval
from quartermaster.services.identity import known_keys

MeteredCaller = Principal | known_keys.Remembered
"""Who makes a chat or an embedding: authenticated, or an API key remembered from a moment ago
(services/identity/known_keys.py), which only the statement taking the hold checks."""


@dataclass(frozen=True)
class ChatCall:
    """A chat as the gateway read it: the OpenAI body forwarded to an HTTP upstream (`body`:
    messages and every field the caller sent, but not `model`, `stream` or our extensions), and
    what the metering and the embedded model read of it. A legacy completion is a chat whose
    body holds a `prompt` instead of messages (`completion`)."""

    model: str
    body: Mapping[str, Any]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    persona: str | None = None
    datasets: tuple[int, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)
    asks: capabilities.Asks = field(default_factory=capabilities.Asks)
    id_prefix: str = "chatcmpl"
    completion: Completion | None = None
    native: NativeCall | None = None
    """The call as its route's dialect has it, sent as such to an upstream that speaks it;
    the chat body is then what the checks and the hold read."""


@dataclass(frozen=True)
class PreparedChat:
    """A chat whose worst case is on hold: complete it or stream it, exactly once."""

    request_id: str
    created: int
    model: str
    provider: Provider
    request: ChatRequest
    prompt_tokens: int
    tokenizer: Tokenizer
    receipt: ledger.HoldReceipt
    references: tuple[retrieval.Passage, ...] | None = None
    """The passages added to the prompt; None when the call named no datasets."""


Booking = asyncio.Task[ledger.Settlement | None]
"""A settlement in flight, done once the charge is in the ledger (or the booking gave up; it
never raises): what a response waits for after it is sent, so the next call of a test or script
sees the charge. The process tracks it too (services/settlements.py) and waits for it at
shutdown."""


@dataclass(frozen=True)
class ChatAnswer:
    result: ChatResult
    usage: TokenUsage
    tokens_charged: int
    booked: Booking


def new_request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


WHAT_IT_IS = {
    ModelKind.CHAT: "a chat model; call it through /v1/chat/completions",
    ModelKind.EMBEDDING: "an embedding model; call it through /v1/embeddings",
    ModelKind.TRANSCRIPTION: "a transcription model: it transcribes audio uploaded to datasets",
}


async def _entry(ctx: Context, model: str, kind: ModelKind) -> catalog.ModelSpec:
    """The model as the call's checks need it (no database read on the hot path); the reserve
    re-reads it, with the caller's allow-list, in its own transaction."""
    entry = await cache.enabled_spec(ctx, model)
    if entry.kind is not kind:
        raise InvalidInput(f"{model} is {WHAT_IT_IS[entry.kind]}", param="model")
    return entry


def _provider(providers: ProviderRegistry, model: str) -> Provider:
    if model not in providers:
        raise NotFound(
            f"the model {model!r} is not served by this gateway",
            param="model",
            code="model_not_found",
        )
    return providers.get(model)


def _output_limit(
    entry: catalog.ModelSpec, requested: int | None, prompt_tokens: int, prompt_field: str
) -> int:
    limit = holds.require_output_limit(
        requested or entry.max_output_tokens, entry.max_output_tokens, entry.name
    )
    if prompt_tokens + limit > entry.context_window:
        raise InvalidInput(
            f"{entry.name} takes {entry.context_window} tokens in all; this request has "
            f"{prompt_tokens} in the prompt and asks for {limit} more; shorten it or lower "
            "max_tokens",
            param=prompt_field,
            code="context_length_exceeded",
        )
    return limit


async def prepare_chat(
    ctx: Context,
    providers: ProviderRegistry,
    caller: MeteredCaller,
    call: ChatCall,
    *,
    route: Route = Route.CHAT,
) -> PreparedChat:
    """Validate and reserve (booked by `route`); raises before anything is sent upstream when
    the call cannot go."""
    async with known_keys.confirmed_before_refusal(ctx, caller):
        entry = await _entry(ctx, call.model, ModelKind.CHAT)
        capabilities.require_capable(entry.name, _can(entry), call.asks)
        provider = _provider(providers, entry.name)
        _require_taken(provider, entry.name, call.body)
        body, references = await _prompt(ctx, providers, caller, call)
        tokenizer, counted = await _counted(provider, entry, body, call)
        longest = max(prompt.text for prompt in counted)
        where = "messages" if call.completion is None else "prompt"
        limit = _output_limit(entry, call.max_tokens, longest, where)
    request_id = new_request_id(call.id_prefix)
    held = sum(_with_margin(entry, prompt.total) for prompt in counted)
    choices = call.asks.choices
    if call.completion is not None:  # every answer it may be billed for, for every prompt
        choices = call.completion.answers(choices, limit, _with_margin(entry, longest))
    receipt = await ledger.reserve(
        ctx, caller, entry.name, held, limit, request_id, choices=choices, route=route
    )
    messages = prompt_count.text_messages(body.get("messages") or ())
    prompts = call.completion.prompts if call.completion else ()
    native = call.native if call.native and provider.speaks(call.native.dialect) else None
    request = ChatRequest(
        messages, limit, call.temperature, call.stop, call.sampling, body, prompts, native
    )
    return PreparedChat(
        request_id,
        int(time.time()),
        entry.name,
        provider,
        request,
        sum(prompt.total for prompt in counted),
        tokenizer,
        receipt,
        references,
    )


async def _counted(
    provider: Provider, entry: catalog.ModelSpec, body: Mapping[str, Any], call: ChatCall
) -> tuple[Tokenizer, list[prompt_count.PromptCount]]:
    """The prompt of each answer (a chat's one conversation, or each prompt of a completion)
    counted as the upstream bills it. The embedded model's own tokenizer counts in a worker
    thread: it loads the model on first use, which must not stall the event loop."""
    own = provider.tokenizer()
    tokenizer = own or tokenizer_for_model(entry.upstream_model)

    def count() -> list[prompt_count.PromptCount]:
        if call.completion is not None:
            return call.completion.count(tokenizer)
        return [prompt_count.count_prompt(tokenizer, body, _bounds(entry))]

    return tokenizer, count() if own is None else await asyncio.to_thread(count)


def _can(entry: catalog.ModelSpec) -> capabilities.Can:
    return capabilities.Can(
        entry.tools, entry.vision, entry.audio_input, entry.logprobs, entry.max_choices
    )


def _bounds(entry: catalog.ModelSpec) -> prompt_count.MediaBounds:
    return prompt_count.MediaBounds(entry.image_tokens, entry.context_window)


def _with_margin(entry: catalog.ModelSpec, prompt_tokens: int) -> int:
    """The prompt to hold: the count plus the model's safety margin, never more than the model
    can read (an upstream refuses a longer prompt, so it is never billed)."""
    margin = math.ceil(prompt_tokens * entry.prompt_margin_pct / 100)
    return min(prompt_tokens + margin, entry.context_window)


def _require_taken(provider: Provider, model: str, body: Mapping[str, Any]) -> None:
    """The embedded model refuses fields it would otherwise ignore (never dropped silently)."""
    field_name = provider.unsupported(body)
    if field_name is not None:
        raise InvalidInput(
            f"{model} does not take {field_name}; leave it out or use another model",
            param=field_name,
            code="unsupported_parameter",
        )


async def _prompt(
    ctx: Context, providers: ProviderRegistry, caller: MeteredCaller, call: ChatCall
) -> tuple[dict[str, Any], tuple[retrieval.Passage, ...] | None]:
    """The body as sent upstream (persona and retrieved passages first), and the passages."""
    if not (call.datasets or call.persona):
        return dict(call.body), None
    messages: list[Mapping[str, Any]] = list(call.body["messages"])
    references: tuple[retrieval.Passage, ...] | None = None
    if call.datasets:  # the passages are part of the prompt: counted, reserved and charged
        principal = await known_keys.confirm(ctx, caller)  # the datasets are read for them
        said = prompt_count.text_messages(messages)
        references = tuple(await retrieval.for_chat(ctx, providers, principal, call.datasets, said))
        if references:
            messages.insert(0, _system(retrieval.sources_message(references).content))
    if call.persona:
        messages.insert(0, _system(call.persona))
    return {**call.body, "messages": messages}, references


def _system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


def _book(ctx: Context, receipt: ledger.HoldReceipt, usage: TokenUsage) -> tuple[int, Booking]:
    """The charge for `usage`, and its booking started in the background."""
    charged = receipt.charge(usage.prompt_tokens, usage.completion_tokens)

    async def settle() -> ledger.Settlement:
        return await ledger.settle_hold(
            ctx,
            receipt,
            usage.prompt_tokens,
            usage.completion_tokens,
            cached_tokens=usage_details.bounded(usage.cached_tokens, usage.prompt_tokens),
            reasoning_tokens=usage_details.bounded(usage.reasoning_tokens, usage.completion_tokens),
        )

    return charged, ctx.settlements.start(settle, receipt.request_id)


async def _release(ctx: Context, request_id: str) -> None:
    """Nothing was generated: give the hold back, shielded from cancellation."""
    with anyio.CancelScope(shield=True):
        await ledger.release(ctx, request_id)


async def complete(ctx: Context, chat: PreparedChat) -> ChatAnswer:
    """The whole answer at once; its booking is under way when it is returned."""
    try:
        result = await chat.provider.chat(chat.request)
    except BaseException:
        await _release(ctx, chat.request_id)
        raise
    usage = result.usage or TokenUsage(chat.prompt_tokens, chat.tokenizer.count(result.content))
    charged, booked = _book(ctx, chat.receipt, usage)
    return ChatAnswer(result, usage, charged, booked)


class ChatStream:
    """The answer piece by piece, settled exactly once: when the final chunk arrives (which then
    carries the usage, counted locally when the upstream reported none), or at `close()` for
    what was generated so far — also when the stream was never iterated at all. `close()`
    returns once the charge is written (or the booking gave up, and logged it)."""

    def __init__(self, ctx: Context, chat: PreparedChat) -> None:
        self._ctx, self._chat = ctx, chat
        self._pieces: list[str] = []
        self._booked: Booking | None = None
        self._resolved = False
        self.tokens_charged: int | None = None
        """Platform tokens charged, once the final chunk has arrived."""

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        chat = self._chat
        try:
            async for chunk in chat.provider.stream_chat(chat.request):
                self._pieces.append(chunk.delta)
                if chunk.is_final:
                    text = "".join(self._pieces)
                    usage = chunk.usage or TokenUsage(
                        chat.prompt_tokens, chat.tokenizer.count(text)
                    )
                    self._resolved = True
                    self.tokens_charged, self._booked = _book(self._ctx, chat.receipt, usage)
                    yield replace(chunk, usage=usage)
                    return
                yield chunk
        finally:
            await self._resolve()

    async def _resolve(self) -> None:
        """Cut short: book what was generated so far, or release when nothing was."""
        if self._resolved:
            return
        self._resolved = True
        text = "".join(self._pieces)
        if not text:
            await _release(self._ctx, self._chat.request_id)
            return
        counted = TokenUsage(self._chat.prompt_tokens, self._chat.tokenizer.count(text))
        self._booked = _book(self._ctx, self._chat.receipt, counted)[1]

    async def close(self) -> None:
        await self._resolve()
        if self._booked is not None:
            await asyncio.shield(self._booked)


@dataclass(frozen=True)
class EmbedAnswer:
    vectors: list[list[float]]
    tokens: int
    tokens_charged: int
    booked: Booking


async def embed(
    ctx: Context,
    providers: ProviderRegistry,
    caller: MeteredCaller,
    model: str,
    texts: list[str],
    *,
    route: Route = Route.EMBEDDINGS,
) -> EmbedAnswer:
    """Embeddings, metered as training tokens: reserved as counted, booked as reported."""
    async with known_keys.confirmed_before_refusal(ctx, caller):
        entry = await _entry(ctx, model, ModelKind.EMBEDDING)
        provider = _provider(providers, entry.name)
    tokenizer = tokenizer_for_model(entry.upstream_model)
    counted = sum(tokenizer.count(text) for text in texts)
    request_id = new_request_id("embd")
    receipt = await ledger.reserve(ctx, caller, entry.name, counted, 0, request_id, route=route)
    try:
        result = await provider.embed(texts)
    except BaseException:
        await _release(ctx, request_id)
        raise
    used = result.usage.prompt_tokens if result.usage else counted
    charged, booked = _book(ctx, receipt, TokenUsage(used, 0))
    return EmbedAnswer(result.vectors, used, charged, booked)
