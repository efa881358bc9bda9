"""GET/PUT /api/orgs/{org_id}/models: the organization's model allow-list (admins, with MFA)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from quartermaster.api.orgs import org_admin
from quartermaster.http.deps import Caller, Ctx
from quartermaster.services.enterprise import model_list

router = APIRouter(
    prefix="/api/orgs/{org_id}", tags=["organization"], dependencies=[Depends(org_admin)]
)


class AllowList(BaseModel):
    models: list[str] | None = Field(
        default=None, max_length=500, description="Allowed model names; null allows every model."
    )


@router.get("/models")
async def get_models(org_id: int, ctx: Ctx, caller: Caller) -> AllowList:
    return AllowList(models=await model_list.get(ctx, caller, org_id))


@router.put("/models")
async def put_models(org_id: int, body: AllowList, ctx: Ctx, caller: Caller) -> AllowList:
    """Replace the allow-list; an empty list or null allows every enabled model again."""
    return AllowList(models=await model_list.set_allowed(ctx, caller, org_id, body.models))
