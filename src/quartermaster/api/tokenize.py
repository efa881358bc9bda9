"""POST /api/tokenize: count a text's tokens for a model before sending it."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from quartermaster.http.deps import Caller, Ctx
from quartermaster.services import model_offer

router = APIRouter(prefix="/api", tags=["gateway"])


class TokenizeBody(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    text: str = Field(max_length=2_000_000)


@router.post("/tokenize")
async def tokenize(body: TokenizeBody, ctx: Ctx, caller: Caller) -> dict[str, int]:
    """Raw tokens, platform tokens, and the worst-case charge of a chat sending this text."""
    return await model_offer.count_tokens(ctx, caller, body.model, body.text)
