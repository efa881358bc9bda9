"""Datasets under /api/datasets: create, list, read, rename/share, delete, upload, search.

Uploads are multipart (`files`, one or more). Each file succeeds or fails alone: the response
lists a result per file, each with its own `status_code` (201 overall when all were stored, 207
when only some were); when none was stored the first refusal is the response, with its status
and every file's result in `error.results`. With `Accept: application/x-ndjson` the same comes
as the last line of a stream of progress events (api/dataset_uploads.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from quartermaster.api import dataset_uploads
from quartermaster.domain.errors import InvalidInput
from quartermaster.http.deps import Caller, Ctx
from quartermaster.http.providers import Providers
from quartermaster.services import datasets
from quartermaster.services.datasets import ingestion, retrieval

router = APIRouter(prefix="/api/datasets", tags=["datasets"])
MAX_FILES = 20


class NewDataset(BaseModel):
    name: str = Field(max_length=datasets.MAX_NAME_CHARS)
    shared_with_org: bool = False
    embedding_model: str | None = Field(default=None, max_length=200)


class DatasetChanges(BaseModel):
    name: str | None = Field(default=None, max_length=datasets.MAX_NAME_CHARS)
    shared_with_org: bool | None = None


@router.get("")
async def list_datasets(ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    """Your datasets and those shared with your organization (`owned` tells them apart)."""
    return [view.as_dict() for view in await datasets.list_datasets(ctx, caller)]


@router.post("", status_code=201)
async def create_dataset(body: NewDataset, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    view = await datasets.create(ctx, caller, body.name, body.shared_with_org, body.embedding_model)
    return view.as_dict()


@router.get("/{dataset_id}")
async def get_dataset(dataset_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The dataset with its documents."""
    return await datasets.get(ctx, caller, dataset_id)


@router.patch("/{dataset_id}")
async def change_dataset(
    dataset_id: int, body: DatasetChanges, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    """Rename it and/or share it with your organization (owner only)."""
    view = await datasets.update(ctx, caller, dataset_id, body.name, body.shared_with_org)
    return view.as_dict()


@router.delete("/{dataset_id}", status_code=204)
async def delete_dataset(dataset_id: int, ctx: Ctx, caller: Caller) -> None:
    """Delete it with its documents, chunks and vectors; the usage already charged stays."""
    await datasets.remove(ctx, caller, dataset_id)


@router.delete("/{dataset_id}/documents/{document_id}", status_code=204)
async def delete_document(dataset_id: int, document_id: int, ctx: Ctx, caller: Caller) -> None:
    """Delete one document with its chunks and vectors (owner only); its charge stays."""
    await datasets.remove_document(ctx, caller, dataset_id, document_id)


@router.post("/{dataset_id}/documents", response_model=None)
async def upload_documents(
    dataset_id: int,
    request: Request,
    ctx: Ctx,
    caller: Caller,
    providers: Providers,
    files: Annotated[list[UploadFile], File(description="One or more files.")],
) -> JSONResponse | StreamingResponse:
    """Upload files (txt, md, html, csv, pdf, docx; png, jpg, tiff by OCR; wav, mp3, m4a
    transcribed), each charged as training tokens; with `Accept: application/x-ndjson`,
    progress events by work done, then the result."""
    if len(files) > MAX_FILES:
        raise InvalidInput(f"upload at most {MAX_FILES} files at once", param="files")
    await ingestion.uploadable(ctx, providers, caller, dataset_id)
    read = await dataset_uploads.read_files(files)
    upload = dataset_uploads.Upload(ctx, providers, caller, dataset_id, read)
    if dataset_uploads.wants_ndjson(request):
        return dataset_uploads.streamed(upload)
    return await dataset_uploads.answered(upload)


@router.get("/{dataset_id}/search")
async def search_dataset(
    dataset_id: int,
    ctx: Ctx,
    caller: Caller,
    providers: Providers,
    q: Annotated[str, Query(min_length=1, max_length=retrieval.MAX_QUERY_CHARS)],
    k: Annotated[int, Query(ge=1, le=retrieval.MAX_K)] = retrieval.DEFAULT_K,
) -> dict[str, Any]:
    """The `k` chunks nearest to `q`, best first, with their document's name and score."""
    passages = await retrieval.search(ctx, providers, caller, [dataset_id], q, k)
    return {"query": q, "results": [passage.as_dict() for passage in passages]}
