"""Embedding work for datasets, metered as training tokens: the whole counted cost is reserved
before the first text is embedded, released when anything fails, and settled once at the end.

The settled charge is the lesser of our count and the tokens the provider reports: the quote the
member was refused or accepted on is never exceeded (the local model's WordPiece tokenizer
counts 10–30 % more tokens than the cl100k count we quote with), and a provider that read fewer
tokens charges fewer.

Errors: the ledger's (QuotaExceeded with `tokens_left`, PermissionDenied, NotFound), and
ServiceUnavailable (embedding_failed) when the provider fails — nothing is charged then.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from quartermaster.domain.errors import (
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.domain.types import ModelKind
from quartermaster.providers.base import Provider
from quartermaster.providers.errors import ProviderError
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.datasets import progress
from quartermaster.services.ledger import model_rules
from quartermaster.store.models import ModelCatalogEntry

EMBED_BATCH = 32
"""Texts per provider call: large enough to keep the model busy, small enough to report
progress and to stay far below upstream request limits."""


@dataclass(frozen=True)
class EmbeddingModel:
    name: str
    upstream_model: str
    context_window: int
    provider: Provider


async def embedding_model(
    ctx: Context, providers: ProviderRegistry, principal: Principal, model_id: int
) -> EmbeddingModel:
    """The dataset's embedding model, if it is enabled, served here, and allowed for the caller."""
    async with ctx.uow.begin(write=False) as tx:
        entry = await tx.session.get(ModelCatalogEntry, model_id)
        if entry is None or not entry.enabled:
            raise NotFound(
                "this dataset's embedding model is disabled; ask an operator to enable it",
                param="embedding_model",
                code="model_not_found",
            )
        await model_rules.require_allowed_for_user(
            tx.session, principal.uid, entry.name, param="embedding_model"
        )
    if entry.kind != ModelKind.EMBEDDING.value:
        raise InvalidInput(f"{entry.name} is not an embedding model", param="embedding_model")
    if entry.name not in providers:
        raise NotFound(
            f"the embedding model {entry.name} is not served by this gateway; ask an operator",
            param="embedding_model",
            code="model_not_found",
        )
    return EmbeddingModel(
        entry.name, entry.upstream_model, entry.context_window, providers.get(entry.name)
    )


@dataclass
class TrainingHold:
    """A reservation of `tokens`; report what the provider read in `reported` before leaving.
    A hold taken for an upper bound (an audio file's transcript, not yet heard) is lowered to
    the count once the work is counted (`count`), and settles at no more than that."""

    request_id: str
    tokens: int
    reported: int | None = None
    tokens_charged: int = 0

    def count(self, tokens: int) -> None:
        self.tokens = tokens


@asynccontextmanager
async def held(
    ctx: Context,
    principal: Principal,
    model: str,
    tokens: int,
    purpose: str = "ingest",
    *,
    extra_ttl_s: int = 0,
) -> AsyncIterator[TrainingHold]:
    """Reserve `tokens` of training for the block; settle on success, release on any failure
    (cancellation included). The ledger refuses up front, with nothing held, over the cap.
    `purpose` prefixes the request id in the usage log (`ingest-…`, `query-…`); a query is
    booked by the search route, any other purpose is an upload's, booked by datasets. Work
    known to be long (a transcription) keeps its hold `extra_ttl_s` past the usual expiry."""
    hold = TrainingHold(f"{purpose}-{uuid.uuid4().hex}", tokens)
    route = Route.SEARCH if purpose == "query" else Route.DATASETS
    ttl = ctx.hold_ttl_s + extra_ttl_s
    await ledger.reserve(
        ctx, principal, model, tokens, 0, hold.request_id, hold_ttl_s=ttl, route=route
    )
    try:
        yield hold
    except BaseException:
        with anyio.CancelScope(shield=True):
            await ledger.release(ctx, hold.request_id)
        raise
    used = tokens if hold.reported is None else min(hold.reported, tokens)
    with anyio.CancelScope(shield=True):
        settlement = await ledger.settle(ctx, hold.request_id, used, 0)
    hold.tokens_charged = settlement.tokens_charged


async def embed_batches(
    model: EmbeddingModel,
    texts: list[str],
    on_progress: progress.OnProgress = progress.ignore,
) -> tuple[list[list[float]], int | None]:
    """One vector per text, in order, and the tokens the provider reported reading (None when
    it did not report them for every batch); `on_progress("embedding", done, total)` by texts
    after each batch, from 0."""
    vectors: list[list[float]] = []
    reported: int | None = 0
    on_progress(progress.EMBEDDING, 0, len(texts))
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        try:
            result = await model.provider.embed(batch)
        except ProviderError as exc:
            raise ServiceUnavailable(
                f"the embedding model {model.name} failed ({exc}); nothing was stored or "
                "charged, try again shortly",
                code="embedding_failed",
            ) from None
        if len(result.vectors) != len(batch):
            raise ServiceUnavailable(
                f"the embedding model {model.name} returned {len(result.vectors)} vectors for "
                f"{len(batch)} texts; nothing was stored or charged",
                code="embedding_failed",
            )
        vectors.extend(result.vectors)
        on_progress(progress.EMBEDDING, len(vectors), len(texts))
        if reported is not None:
            reported = None if result.usage is None else reported + result.usage.prompt_tokens
    return vectors, reported
