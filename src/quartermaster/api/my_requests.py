"""A member's own token requests under /api/me/token-requests: ask, and see the outcomes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from quartermaster.domain.requests import MAX_REASON_CHARS
from quartermaster.domain.types import TokenKind
from quartermaster.http.deps import Caller, Ctx
from quartermaster.http.fields import PositiveTokens
from quartermaster.services.enterprise import token_requests

router = APIRouter(prefix="/api/me/token-requests", tags=["me"])


class AskBody(BaseModel):
    kind: TokenKind = TokenKind.INFERENCE
    amount: PositiveTokens
    reason: str = Field(max_length=MAX_REASON_CHARS)


@router.get("")
async def my_requests(ctx: Ctx, caller: Caller) -> list[dict[str, Any]]:
    """Your requests, newest first, with their status and any admin note."""
    return await token_requests.mine(ctx, caller)


@router.post("", status_code=201)
async def ask(body: AskBody, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Ask for more tokens; the org's rule may approve it at once (`status` says)."""
    return await token_requests.ask(ctx, caller, body.kind, body.amount, body.reason)
