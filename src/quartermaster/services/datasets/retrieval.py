"""Retrieval: the passages of the caller's datasets nearest to a query, for search and for chat.

The query is embedded with each dataset's embedding model and charged as training tokens, like
any embedding. Each dataset's vectors are searched in the process's `VectorIndex`, reloaded
from the database whenever the dataset's content tag changed (by an upload or a deletion in any
process). A chat that names datasets gets the passages for its last user message as a system
message of numbered sources — part of the prompt, so counted, reserved and charged as inference
tokens with it — and returns them as `references`.

Errors: NotFound (dataset_not_found) for a dataset the caller may not read, InvalidInput for an
empty query or a chat with no user message, and those of services/datasets/embedding_work.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.principal import Principal
from quartermaster.providers.base import ChatMessage
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.rag import Hit, NumpyIndex, VectorIndex
from quartermaster.services.context import Context
from quartermaster.services.datasets import embedding_work, library
from quartermaster.store.models import Chunk, Dataset, Document

INDEX: VectorIndex = NumpyIndex()
"""The process's vector cache; every process keeps its own, keyed by content tag."""
DEFAULT_K = 5
MAX_K = 50
CHAT_PASSAGES = 4
MAX_QUERY_CHARS = 4000
SOURCES_PREAMBLE = (
    "Answer from the numbered sources below when they are relevant and cite them like [1]. "
    "If they do not hold the answer, say so."
)


@dataclass(frozen=True)
class Passage:
    dataset_id: int
    document_id: int
    document: str
    chunk_id: int
    ordinal: int
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def search(
    ctx: Context,
    providers: ProviderRegistry,
    principal: Principal,
    dataset_ids: Sequence[int],
    query: str,
    k: int = DEFAULT_K,
    *,
    index: VectorIndex = INDEX,
) -> list[Passage]:
    """The `k` passages nearest to `query` across the datasets, best first."""
    query = query.strip()
    if not 1 <= len(query) <= MAX_QUERY_CHARS:
        raise InvalidInput(f"the query has 1 to {MAX_QUERY_CHARS} characters", param="q")
    if not 1 <= k <= MAX_K:
        raise InvalidInput(f"k is between 1 and {MAX_K}", param="k")
    async with ctx.uow.begin(write=False) as tx:
        found = await library.visible(tx.session, principal, list(dict.fromkeys(dataset_ids)))
        targets = [(dataset.id, dataset.embedding_model_id) for dataset in found]
    hits: list[Hit] = []
    for model_id in sorted({model_id for _, model_id in targets}):
        model = await embedding_work.embedding_model(ctx, providers, principal, model_id)
        vector = await _query_vector(ctx, principal, model, query)
        for dataset_id in (d for d, m in targets if m == model_id):
            await _load(ctx, index, dataset_id)
            hits.extend(index.search(dataset_id, vector, k))
    best = sorted(hits, key=lambda hit: -hit.score)[:k]
    return await _passages(ctx, best)


async def _query_vector(
    ctx: Context, principal: Principal, model: embedding_work.EmbeddingModel, query: str
) -> list[float]:
    tokens = tokenizer_for_model(model.upstream_model).count(query)
    async with embedding_work.held(ctx, principal, model.name, tokens, purpose="query") as hold:
        vectors, hold.reported = await embedding_work.embed_batches(model, [query])
    return vectors[0]


async def _load(ctx: Context, index: VectorIndex, dataset_id: int) -> None:
    """Load the dataset's vectors unless the index holds them as of the current tag."""
    async with ctx.uow.begin(write=False) as tx:
        # The tag is read before the rows: a change committed in between leaves the cache
        # labelled with the older tag, so the next search reloads instead of trusting it.
        tag = await tx.session.scalar(select(Dataset.content_tag).where(Dataset.id == dataset_id))
        if tag is None or index.has(dataset_id, tag):
            return
        rows = (
            await tx.session.execute(
                select(Chunk.id, Chunk.embedding)
                .where(Chunk.dataset_id == dataset_id)
                .order_by(Chunk.id)
            )
        ).all()
    index.put(dataset_id, tag, [row.id for row in rows], [row.embedding for row in rows])


async def _passages(ctx: Context, hits: list[Hit]) -> list[Passage]:
    if not hits:
        return []
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.execute(
            select(Chunk, Document.filename)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.id.in_([hit.chunk_id for hit in hits]))
        )
        chunks = {chunk.id: (chunk, filename) for chunk, filename in rows}
    return [
        Passage(
            chunk.dataset_id,
            chunk.document_id,
            filename,
            chunk.id,
            chunk.ordinal,
            chunk.text,
            round(hit.score, 6),
        )
        for hit in hits
        if hit.chunk_id in chunks
        for chunk, filename in [chunks[hit.chunk_id]]
    ]


def last_user_text(messages: Sequence[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content
    raise InvalidInput("a chat with datasets needs a user message to search for", param="messages")


async def for_chat(
    ctx: Context,
    providers: ProviderRegistry,
    principal: Principal,
    dataset_ids: Sequence[int],
    messages: Sequence[ChatMessage],
) -> list[Passage]:
    """The passages for the chat's last user message (its end, if it is very long)."""
    query = last_user_text(messages)[-MAX_QUERY_CHARS:]
    return await search(ctx, providers, principal, dataset_ids, query, CHAT_PASSAGES)


def sources_message(passages: Sequence[Passage]) -> ChatMessage:
    """The system message that puts the passages in the prompt, numbered as in `references`."""
    sources = (f"[{i}] {p.document}\n{p.text}" for i, p in enumerate(passages, 1))
    return ChatMessage("system", "\n\n".join((SOURCES_PREAMBLE, *sources)))


def references(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """The sources as a response lists them: `index` is the number the prompt cites."""
    return [{"index": i, **p.as_dict()} for i, p in enumerate(passages, 1)]
