"""Uploading a document into a dataset: extract → chunk → count → reserve → embed → store → settle.

The whole training cost (the tokens of every chunk, overlap included, at the embedding model's
training rate) is reserved before anything is embedded, so an upload over the cap is refused up
front with what is left, and nothing is stored or charged. The document, its chunks and their
vectors are stored in one transaction with the `dataset.upload` audit event, so a failed upload
leaves nothing behind and its hold is released. Each step reports its progress to `on_progress`
(services/datasets/progress.py): extracting, then embedding by chunks.

Errors: NotFound / PermissionDenied (services/datasets/library.py), UnreadableDocument
(rag/parse.py),
Conflict (duplicate_document: the same bytes are already in the dataset; nothing is charged),
the ledger's QuotaExceeded, and ServiceUnavailable (embedding_failed).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from quartermaster.domain.errors import Conflict
from quartermaster.domain.principal import Principal
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.rag import Chunk as Piece
from quartermaster.rag import ParsedDocument, extract, plan_for, split, to_bytes
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.datasets import embedding_work, library, progress
from quartermaster.store.models import Chunk, Document


@dataclass(frozen=True)
class Ingested:
    """A stored document and what it cost."""

    document_id: int
    filename: str
    content_type: str
    size_bytes: int
    chunks: int
    tokens: int
    tokens_charged: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Prepared:
    document: ParsedDocument
    pieces: list[Piece]
    sha256: str
    size_bytes: int

    @property
    def tokens(self) -> int:
        return sum(piece.tokens for piece in self.pieces)


async def uploadable(
    ctx: Context, providers: ProviderRegistry, principal: Principal, dataset_id: int
) -> embedding_work.EmbeddingModel:
    """The dataset's embedding model, if the caller may upload into the dataset: what refuses an
    upload before any work is done (NotFound, PermissionDenied, a model not served)."""
    async with ctx.uow.begin(write=False) as tx:
        dataset = await library.owned(tx.session, principal, dataset_id)
        model_id = dataset.embedding_model_id
    return await embedding_work.embedding_model(ctx, providers, principal, model_id)


async def ingest(
    ctx: Context,
    providers: ProviderRegistry,
    principal: Principal,
    dataset_id: int,
    filename: str,
    data: bytes,
    on_progress: progress.OnProgress = progress.ignore,
) -> Ingested:
    """Store one file in the caller's dataset, charged as training tokens; all or nothing."""
    model = await uploadable(ctx, providers, principal, dataset_id)
    sha256 = hashlib.sha256(data).hexdigest()
    await _refuse_duplicate(ctx, dataset_id, sha256, filename)
    on_progress(progress.EXTRACTING, 0, 1)
    prepared = await anyio.to_thread.run_sync(_prepare, model, filename, data, sha256)
    on_progress(progress.EXTRACTING, 1, 1)
    async with embedding_work.held(ctx, principal, model.name, prepared.tokens) as hold:
        vectors, hold.reported = await embedding_work.embed_batches(
            model, [piece.text for piece in prepared.pieces], on_progress
        )
        document_id = await _store(ctx, principal, dataset_id, prepared, vectors)
    return Ingested(
        document_id,
        filename,
        prepared.document.content_type,
        prepared.size_bytes,
        len(prepared.pieces),
        prepared.tokens,
        hold.tokens_charged,
    )


def _prepare(
    model: embedding_work.EmbeddingModel, filename: str, data: bytes, sha256: str
) -> _Prepared:
    """Parsing and counting are CPU work: they run in a worker thread."""
    document = extract(filename, data)
    tokenizer = tokenizer_for_model(model.upstream_model)
    pieces = split(document.text, tokenizer, plan_for(model.context_window))
    return _Prepared(document, pieces, sha256, len(data))


def _duplicate(filename: str, existing: Document | None) -> Conflict:
    where = f" as {existing.filename} (document {existing.id})" if existing else ""
    return Conflict(
        f"{filename} is already in this dataset{where}; nothing was stored or charged",
        param="files",
        code="duplicate_document",
        details={"document_id": existing.id} if existing else {},
    )


async def _refuse_duplicate(ctx: Context, dataset_id: int, sha256: str, filename: str) -> None:
    async with ctx.uow.begin(write=False) as tx:
        existing = await tx.session.scalar(
            select(Document).where(Document.dataset_id == dataset_id, Document.sha256 == sha256)
        )
    if existing is not None:
        raise _duplicate(filename, existing)


async def _store(
    ctx: Context,
    principal: Principal,
    dataset_id: int,
    prepared: _Prepared,
    vectors: list[list[float]],
) -> int:
    """The document, its chunks with their vectors, and the audit event, in one transaction."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        dataset = await library.owned(session, principal, dataset_id, lock=True)
        document = Document(
            dataset_id=dataset_id,
            filename=prepared.document.filename[:500],
            content_type=prepared.document.content_type,
            sha256=prepared.sha256,
            size_bytes=prepared.size_bytes,
            tokens=prepared.tokens,
            created_at=now,
        )
        session.add(document)
        try:
            await session.flush()
        except IntegrityError:  # the same file, uploaded concurrently, won the race
            raise _duplicate(prepared.document.filename, None) from None
        session.add_all(
            Chunk(
                document_id=document.id,
                dataset_id=dataset_id,
                ordinal=piece.ordinal,
                text=piece.text,
                tokens=piece.tokens,
                embedding=to_bytes(vector),
            )
            for piece, vector in zip(prepared.pieces, vectors, strict=True)
        )
        dataset.content_tag = library.new_tag()
        after = {
            "document_id": document.id,
            "filename": document.filename,
            "sha256": prepared.sha256,
            "chunks": len(prepared.pieces),
            "tokens": prepared.tokens,
        }
        entry = audit.AuditEntry(
            "dataset.upload", principal.user_id, dataset.org_id, "dataset", dataset_id, None, after
        )
        await audit.record(session, entry, now)
        await tx.commit()
        return document.id
