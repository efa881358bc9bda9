"""Dataset pages: list and create, then one dataset's documents, upload (with progress by work
done, streamed from /api), deleting one document, rename, sharing, delete, and a search box."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quartermaster.domain.errors import DomainError
from quartermaster.http.deps import Ctx
from quartermaster.http.providers import Providers
from quartermaster.services import datasets
from quartermaster.services.datasets import retrieval
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn

router = APIRouter(prefix="/datasets", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]


@router.get("")
async def list_page(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    found = await datasets.list_datasets(ctx, viewer.principal)
    return page(request, "datasets.html", {"active": "datasets", "datasets": found})


@router.post("")
async def create(
    request: Request, ctx: Ctx, viewer: SignedIn, name: Text, shared: Text = ""
) -> Response:
    try:
        made = await datasets.create(ctx, viewer.principal, name, shared == "yes")
    except DomainError as refused:
        found = await datasets.list_datasets(ctx, viewer.principal)
        context = {"active": "datasets", "datasets": found, "error": refused.message}
        return page(request, "datasets.html", context, 400)
    return RedirectResponse(f"/datasets/{made.id}", status_code=303)


@router.get("/{dataset_id}")
async def detail(
    dataset_id: int, request: Request, ctx: Ctx, viewer: SignedIn, providers: Providers, q: str = ""
) -> Response:
    dataset = await datasets.get(ctx, viewer.principal, dataset_id)
    context: dict[str, Any] = {"active": "datasets", "dataset": dataset, "q": q[:500], "hits": None}
    if q.strip():
        context["hits"] = await retrieval.search(
            ctx, providers, viewer.principal, [dataset_id], q[:500], 5
        )
    return page(request, "dataset.html", context)


@router.post("/{dataset_id}/rename")
async def rename(
    dataset_id: int, ctx: Ctx, viewer: SignedIn, name: Text, shared: Text = ""
) -> Response:
    await datasets.update(
        ctx, viewer.principal, dataset_id, name=name, shared_with_org=shared == "yes"
    )
    return RedirectResponse(f"/datasets/{dataset_id}", status_code=303)


@router.post("/{dataset_id}/delete")
async def delete(dataset_id: int, ctx: Ctx, viewer: SignedIn) -> Response:
    await datasets.remove(ctx, viewer.principal, dataset_id)
    return RedirectResponse("/datasets", status_code=303)


@router.post("/{dataset_id}/documents/{document_id}/delete")
async def delete_document(
    dataset_id: int, document_id: int, ctx: Ctx, viewer: SignedIn
) -> Response:
    await datasets.remove_document(ctx, viewer.principal, dataset_id, document_id)
    return RedirectResponse(f"/datasets/{dataset_id}", status_code=303)
