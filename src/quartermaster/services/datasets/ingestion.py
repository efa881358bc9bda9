"""Uploading a document into a dataset: extract → chunk → count → reserve → embed → store → settle.
An audio file is probed → reserved → transcribed → chunked → embedded → stored → settled: its
duration bounds both costs up front (transcription.py).

The whole training cost (the tokens of every chunk, overlap included, at the embedding model's
training rate) is reserved before anything is embedded, so an upload over the cap is refused up
front with what is left, and nothing is stored or charged. The document, its chunks and their
vectors are stored in one transaction with the `dataset.upload` audit event, so a failed upload
leaves nothing behind and its hold is released. Each step reports its progress to `on_progress`
(services/datasets/progress.py): extracting (and OCR's pages, transcription's seconds), then
embedding by chunks.

Errors: NotFound / PermissionDenied (services/datasets/library.py), UnreadableDocument
(rag/parse.py), those of transcription.py,
Conflict (duplicate_document: the same bytes are already in the dataset; nothing is charged),
the ledger's QuotaExceeded, and ServiceUnavailable (embedding_failed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from quartermaster.domain.errors import Conflict, QuotaExceeded
from quartermaster.domain.principal import Principal
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.rag import (
    AUDIO,
    ParsedDocument,
    Recording,
    UnreadableDocument,
    checked_type,
    extract,
    from_text,
    plan_for,
    probe,
    split,
    to_bytes,
)
from quartermaster.rag import Chunk as Piece
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.datasets import embedding_work, library, progress, transcription
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


@dataclass(frozen=True)
class _Upload:
    dataset_id: int
    filename: str
    data: bytes
    content_type: str
    sha256: str


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
    """Store one file in the caller's dataset, charged as training tokens; all or nothing.
    Each step reports to `on_progress` as it goes (OCR and transcription from a worker
    thread): extracting, ("ocr", pages done, pages), ("transcribing", seconds done, seconds),
    then embedding by chunks."""
    content_type = checked_type(filename, data)
    model = await uploadable(ctx, providers, principal, dataset_id)
    sha256 = hashlib.sha256(data).hexdigest()
    await _refuse_duplicate(ctx, dataset_id, sha256, filename)
    upload = _Upload(dataset_id, filename, data, content_type, sha256)
    if content_type in AUDIO:
        return await _ingest_audio(ctx, providers, principal, model, upload, on_progress)
    on_progress(progress.EXTRACTING, 0, 1)
    document = await anyio.to_thread.run_sync(extract, filename, data, on_progress)
    prepared = await anyio.to_thread.run_sync(_prepare, model, document, upload)
    on_progress(progress.EXTRACTING, 1, 1)
    with _naming(filename):
        async with embedding_work.held(ctx, principal, model.name, prepared.tokens) as hold:
            document_id = await _embed_and_store(
                ctx, principal, model, prepared, hold, upload, on_progress
            )
    return _ingested(document_id, prepared, hold.tokens_charged)


async def _ingest_audio(
    ctx: Context,
    providers: ProviderRegistry,
    principal: Principal,
    model: embedding_work.EmbeddingModel,
    upload: _Upload,
    on_progress: progress.OnProgress,
) -> Ingested:
    """Both holds (the transcription's, exact; the embedding's, a bound) before any work."""
    speech = await transcription.speech_model(ctx, providers, principal, upload.filename)
    recording = await anyio.to_thread.run_sync(_probe, upload)
    heard = transcription.tokens_heard(recording)
    bound = transcription.embedding_bound(heard, plan_for(model.context_window))
    held = partial(embedding_work.held, ctx, principal, extra_ttl_s=transcription.ttl_s(recording))
    with _naming(upload.filename, recording):
        async with (
            held(speech.name, heard, purpose="transcribe") as heard_hold,
            held(model.name, bound) as hold,
        ):
            text = await transcription.transcribe(
                speech, upload.filename, upload.data, recording, on_progress
            )
            document = from_text(upload.filename, upload.content_type, text)
            prepared = await anyio.to_thread.run_sync(_prepare, model, document, upload)
            hold.count(prepared.tokens)
            document_id = await _embed_and_store(
                ctx, principal, model, prepared, hold, upload, on_progress
            )
    return _ingested(document_id, prepared, heard_hold.tokens_charged + hold.tokens_charged)


def _probe(upload: _Upload) -> Recording:
    try:
        return probe(upload.data)
    except UnreadableDocument as exc:
        message = f"{upload.filename}: {exc.message}"
        raise UnreadableDocument(message, "files", exc.code, exc.details) from None


@contextmanager
def _naming(filename: str, recording: Recording | None = None) -> Iterator[None]:
    """A refusal over the cap names the file (and for audio, how its cost was bounded)."""
    try:
        yield
    except QuotaExceeded as exc:
        what = filename
        if recording is not None:
            what += (
                f" ({recording.minutes:,.1f} minutes of audio, counted at "
                f"{transcription.TOKENS_PER_MINUTE} tokens a minute)"
            )
        raise QuotaExceeded(f"{what}: {exc.message}", "files", exc.code, exc.details) from None


def _prepare(
    model: embedding_work.EmbeddingModel, document: ParsedDocument, upload: _Upload
) -> _Prepared:
    """Counting is CPU work: it runs in a worker thread."""
    tokenizer = tokenizer_for_model(model.upstream_model)
    pieces = split(document.text, tokenizer, plan_for(model.context_window))
    return _Prepared(document, pieces, upload.sha256, len(upload.data))


async def _embed_and_store(
    ctx: Context,
    principal: Principal,
    model: embedding_work.EmbeddingModel,
    prepared: _Prepared,
    hold: embedding_work.TrainingHold,
    upload: _Upload,
    on_progress: progress.OnProgress,
) -> int:
    vectors, hold.reported = await embedding_work.embed_batches(
        model, [piece.text for piece in prepared.pieces], on_progress
    )
    return await _store(ctx, principal, upload.dataset_id, prepared, vectors)


def _ingested(document_id: int, prepared: _Prepared, tokens_charged: int) -> Ingested:
    document = prepared.document
    return Ingested(
        document_id,
        document.filename,
        document.content_type,
        prepared.size_bytes,
        len(prepared.pieces),
        prepared.tokens,
        tokens_charged,
    )


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
