"""Datasets: a member's collections of documents for retrieval, optionally shared with their org.

The owner creates, renames, shares, fills and deletes a dataset; when it is shared, the active
members of the owner's organization may list it, search it and chat with it, read-only. Anyone
else is told it does not exist (404), so ids reveal nothing. Deleting removes the documents,
chunks and vectors; the usage they were charged stays in the ledger.

Errors: NotFound (dataset_not_found), PermissionDenied (not_dataset_owner: visible but shared),
InvalidInput (bad name, sharing without an org, an embedding model that is not one).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import InvalidInput, NotFound, PermissionDenied
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import ModelKind
from quartermaster.services import audit, catalog
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.services.ledger import model_rules
from quartermaster.store.models import Chunk, Dataset, Document, ModelCatalogEntry

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class DatasetView:
    id: int
    name: str
    owner_user_id: int
    org_id: int | None
    shared_with_org: bool
    embedding_model: str
    created_at: datetime
    document_count: int
    chunk_count: int
    tokens: int
    """What the documents were charged for: the tokens of every chunk embedded."""
    owned: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_tag() -> str:
    """A fresh content tag: every process's cached vectors for the dataset become stale."""
    return uuid.uuid4().hex


def clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= MAX_NAME_CHARS:
        raise InvalidInput(f"a dataset name has 1 to {MAX_NAME_CHARS} characters", param="name")
    return cleaned


async def _org_of(session: AsyncSession, principal: Principal) -> int | None:
    membership = await authz.active_membership(session, principal.uid)
    return membership.org_id if membership else None


def _visible_to(user_id: int, org_id: int | None) -> ColumnElement[bool]:
    owned = Dataset.owner_user_id == user_id
    if org_id is None:
        return owned
    return or_(owned, and_(Dataset.org_id == org_id, Dataset.shared_with_org.is_(True)))


async def visible(
    session: AsyncSession, principal: Principal, dataset_ids: list[int]
) -> list[Dataset]:
    """The datasets, in the order asked, if the caller may read every one of them."""
    org_id = await _org_of(session, principal)
    rows = await session.scalars(
        select(Dataset).where(Dataset.id.in_(dataset_ids), _visible_to(principal.uid, org_id))
    )
    found = {row.id: row for row in rows}
    missing = [str(i) for i in dataset_ids if i not in found]
    if missing:
        raise NotFound(
            f"no dataset {', '.join(missing)} among yours or those shared with your "
            "organization; the Datasets page lists them",
            param="datasets",
            code="dataset_not_found",
        )
    return [found[i] for i in dataset_ids]


async def owned(
    session: AsyncSession, principal: Principal, dataset_id: int, *, lock: bool = False
) -> Dataset:
    """The dataset if the caller owns it; `lock` holds its row until commit, so a change and a
    deletion (or two uploads' tag updates) never interleave."""
    if lock:
        await session.execute(select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())
    (dataset,) = await visible(session, principal, [dataset_id])
    if dataset.owner_user_id != principal.uid:
        raise PermissionDenied(
            "only the dataset's owner can change it; members of the org may search it",
            code="not_dataset_owner",
        )
    return dataset


async def _embedding_model_id(session: AsyncSession, principal: Principal, name: str | None) -> int:
    if name is None:
        candidates = await session.scalars(
            select(ModelCatalogEntry)
            .where(
                ModelCatalogEntry.kind == ModelKind.EMBEDDING.value,
                ModelCatalogEntry.enabled.is_(True),
            )
            .order_by(ModelCatalogEntry.name != DEFAULT_EMBEDDING_MODEL, ModelCatalogEntry.name)
        )
        entry = candidates.first()
        if entry is None:
            raise InvalidInput("no embedding model is enabled; ask an operator", param="model")
    else:
        entry = await catalog.enabled_model(session, name)
    if entry.kind != ModelKind.EMBEDDING.value:
        raise InvalidInput(
            f"{entry.name} is a {entry.kind} model; pick an embedding model from /v1/models",
            param="embedding_model",
        )
    await model_rules.require_allowed_for_user(
        session, principal.uid, entry.name, param="embedding_model"
    )
    return entry.id


async def _views(
    session: AsyncSession, principal: Principal, where: ColumnElement[bool]
) -> list[DatasetView]:
    documents = (
        select(
            Document.dataset_id,
            func.count(Document.id).label("documents"),
            func.coalesce(func.sum(Document.tokens), 0).label("tokens"),
        )
        .group_by(Document.dataset_id)
        .subquery()
    )
    chunks = (
        select(Chunk.dataset_id, func.count(Chunk.id).label("chunks"))
        .group_by(Chunk.dataset_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Dataset,
            ModelCatalogEntry.name,
            documents.c.documents,
            documents.c.tokens,
            chunks.c.chunks,
        )
        .join(ModelCatalogEntry, ModelCatalogEntry.id == Dataset.embedding_model_id)
        .outerjoin(documents, documents.c.dataset_id == Dataset.id)
        .outerjoin(chunks, chunks.c.dataset_id == Dataset.id)
        .where(where)
        .order_by(Dataset.id)
    )
    return [
        DatasetView(
            id=dataset.id,
            name=dataset.name,
            owner_user_id=dataset.owner_user_id,
            org_id=dataset.org_id,
            shared_with_org=dataset.shared_with_org,
            embedding_model=model,
            created_at=dataset.created_at,
            document_count=int(document_count or 0),
            chunk_count=int(chunk_count or 0),
            tokens=int(tokens or 0),
            owned=dataset.owner_user_id == principal.uid,
        )
        for dataset, model, document_count, tokens, chunk_count in rows
    ]


async def list_datasets(ctx: Context, principal: Principal) -> list[DatasetView]:
    """The caller's datasets and those shared with their organization."""
    async with ctx.uow.begin(write=False) as tx:
        org_id = await _org_of(tx.session, principal)
        return await _views(tx.session, principal, _visible_to(principal.uid, org_id))


async def get(ctx: Context, principal: Principal, dataset_id: int) -> dict[str, Any]:
    """A dataset with its documents, oldest first."""
    async with ctx.uow.begin(write=False) as tx:
        await visible(tx.session, principal, [dataset_id])
        (view,) = await _views(tx.session, principal, Dataset.id == dataset_id)
        chunk_counts = (
            select(Chunk.document_id, func.count(Chunk.id).label("chunks"))
            .where(Chunk.dataset_id == dataset_id)
            .group_by(Chunk.document_id)
            .subquery()
        )
        rows = await tx.session.execute(
            select(Document, chunk_counts.c.chunks)
            .outerjoin(chunk_counts, chunk_counts.c.document_id == Document.id)
            .where(Document.dataset_id == dataset_id)
            .order_by(Document.id)
        )
        documents = [_document(document, chunks) for document, chunks in rows]
    return view.as_dict() | {"documents": documents}


def _document(document: Document, chunks: int | None) -> dict[str, Any]:
    return {
        "id": document.id,
        "filename": document.filename,
        "content_type": document.content_type,
        "sha256": document.sha256,
        "size_bytes": document.size_bytes,
        "tokens": document.tokens,
        "chunks": int(chunks or 0),
        "created_at": document.created_at,
    }


async def create(
    ctx: Context,
    principal: Principal,
    name: str,
    shared_with_org: bool = False,
    embedding_model: str | None = None,
) -> DatasetView:
    """A new, empty dataset owned by the caller, in their current organization."""
    cleaned = clean_name(name)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        org_id = await _org_of(session, principal)
        if shared_with_org and org_id is None:
            raise InvalidInput(
                "you belong to no organization to share with", param="shared_with_org"
            )
        dataset = Dataset(
            owner_user_id=principal.uid,
            org_id=org_id,
            name=cleaned,
            shared_with_org=shared_with_org,
            embedding_model_id=await _embedding_model_id(session, principal, embedding_model),
            created_at=now,
            content_tag=new_tag(),
        )
        session.add(dataset)
        await session.flush()
        after = {"name": cleaned, "shared_with_org": shared_with_org}
        await _audit(session, principal, dataset, "dataset.create", None, after, now)
        (view,) = await _views(session, principal, Dataset.id == dataset.id)
        await tx.commit()
    return view


async def update(
    ctx: Context,
    principal: Principal,
    dataset_id: int,
    name: str | None = None,
    shared_with_org: bool | None = None,
) -> DatasetView:
    """Rename and/or share or unshare (owner only); each change audited before/after."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        dataset = await owned(session, principal, dataset_id, lock=True)
        if name is not None and (cleaned := clean_name(name)) != dataset.name:
            before: dict[str, Any] = {"name": dataset.name}
            dataset.name = cleaned
            await _audit(
                session, principal, dataset, "dataset.rename", before, {"name": cleaned}, now
            )
        if shared_with_org is not None and shared_with_org != dataset.shared_with_org:
            if shared_with_org and dataset.org_id is None:
                raise InvalidInput(
                    "this dataset belongs to no organization to share with",
                    param="shared_with_org",
                )
            before = {"shared_with_org": dataset.shared_with_org}
            dataset.shared_with_org = shared_with_org
            after = {"shared_with_org": shared_with_org}
            await _audit(session, principal, dataset, "dataset.share", before, after, now)
        await session.flush()
        (view,) = await _views(session, principal, Dataset.id == dataset_id)
        await tx.commit()
    return view


async def remove(ctx: Context, principal: Principal, dataset_id: int) -> None:
    """Delete the dataset with its documents, chunks and vectors (owner only); usage stays."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        dataset = await owned(session, principal, dataset_id, lock=True)
        (view,) = await _views(session, principal, Dataset.id == dataset_id)
        await session.execute(delete(Chunk).where(Chunk.dataset_id == dataset_id))
        await session.execute(delete(Document).where(Document.dataset_id == dataset_id))
        before = {"name": view.name, "documents": view.document_count, "chunks": view.chunk_count}
        await _audit(session, principal, dataset, "dataset.delete", before, None, now)
        await session.delete(dataset)
        await tx.commit()


async def _audit(
    session: AsyncSession,
    principal: Principal,
    dataset: Dataset,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    entry = audit.AuditEntry(
        action, principal.user_id, dataset.org_id, "dataset", dataset.id, before, after
    )
    await audit.record(session, entry, now)
