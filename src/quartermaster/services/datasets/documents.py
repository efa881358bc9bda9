"""One document taken out of a dataset: its chunks and vectors go, its charge stays.

Whoever may delete the dataset (its owner) may delete one of its documents; anyone else is told
the dataset does not exist. The usage the upload was charged stays in the ledger, as when a whole
dataset is deleted; the `dataset.document_delete` audit event is written in the same
transaction, and the dataset's content tag changes so no process searches the old vectors.

Errors: NotFound (dataset_not_found, document_not_found), PermissionDenied (not_dataset_owner).
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from quartermaster.domain.errors import NotFound
from quartermaster.domain.principal import Principal
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.datasets import library
from quartermaster.store.models import Chunk, Document


async def remove_document(
    ctx: Context, principal: Principal, dataset_id: int, document_id: int
) -> None:
    """Delete the document with its chunks and vectors (the dataset's owner only)."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        dataset = await library.owned(session, principal, dataset_id, lock=True)
        document = await session.scalar(
            select(Document).where(Document.id == document_id, Document.dataset_id == dataset_id)
        )
        if document is None:
            raise NotFound(
                f"no document {document_id} in this dataset; the dataset's page lists them",
                param="document_id",
                code="document_not_found",
            )
        chunks = await session.scalar(
            select(func.count(Chunk.id)).where(Chunk.document_id == document_id)
        )
        before = {
            "document_id": document.id,
            "filename": document.filename,
            "sha256": document.sha256,
            "chunks": int(chunks or 0),
            "tokens": document.tokens,
        }
        await session.execute(delete(Chunk).where(Chunk.document_id == document_id))
        await session.delete(document)
        dataset.content_tag = library.new_tag()
        entry = audit.AuditEntry(
            "dataset.document_delete",
            principal.user_id,
            dataset.org_id,
            "dataset",
            dataset_id,
            before,
            None,
        )
        await audit.record(session, entry, now)
        await tx.commit()
