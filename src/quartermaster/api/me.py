"""Self-service under /api/me: profile, MFA, linked certificate, API keys, login history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from quartermaster.http.deps import Caller, Cert, Ctx
from quartermaster.http.fields import LoginsLimit
from quartermaster.services.identity import api_keys, cac, logins, mfa, profile

router = APIRouter(prefix="/api/me", tags=["me"])


class CodeBody(BaseModel):
    code: str = Field(min_length=6, max_length=20)


class DisableMfaBody(CodeBody):
    password: str = Field(max_length=256)


class NewKeyBody(BaseModel):
    name: str = Field(max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=api_keys.MAX_EXPIRY_DAYS)


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class NewKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    key: str = Field(description="The whole key. Shown this once; store it now.")


@router.get("")
async def get_me(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return await profile.me(ctx, caller)


@router.post("/mfa/enroll")
async def enroll_mfa(ctx: Ctx, caller: Caller) -> dict[str, str]:
    """Start TOTP enrolment: scan `qr_svg` (or type `secret`), then confirm with a code."""
    enrolment = await mfa.start_enrolment(ctx, caller)
    return {
        "secret": enrolment.secret,
        "otpauth_uri": enrolment.otpauth_uri,
        "qr_svg": enrolment.qr_svg,
    }


@router.get("/mfa/qr.svg", response_class=Response)
async def enrolment_qr(ctx: Ctx, caller: Caller) -> Response:
    """The pending enrolment's QR code as an SVG image (drawn locally, never fetched)."""
    enrolment = await mfa.start_enrolment(ctx, caller)
    return Response(enrolment.qr_svg, media_type="image/svg+xml")


@router.post("/mfa/confirm")
async def confirm_mfa(body: CodeBody, ctx: Ctx, caller: Caller) -> dict[str, list[str]]:
    """Turn MFA on with a first code; returns ten recovery codes, shown this once."""
    return {"recovery_codes": await mfa.confirm_enrolment(ctx, caller, body.code)}


@router.post("/mfa/disable", status_code=204)
async def disable_mfa(body: DisableMfaBody, ctx: Ctx, caller: Caller) -> None:
    """Turn MFA off: needs your password and a current or recovery code."""
    await mfa.disable(ctx, caller, body.password, body.code)


@router.post("/cac", status_code=204)
async def link_cac(ctx: Ctx, caller: Caller, certificate: Cert) -> None:
    """Link the certificate presented on this connection to your account."""
    await cac.link(ctx, caller, certificate)


@router.delete("/cac", status_code=204)
async def unlink_cac(ctx: Ctx, caller: Caller) -> None:
    await cac.unlink(ctx, caller)


@router.get("/api-keys")
async def list_api_keys(ctx: Ctx, caller: Caller) -> list[KeyOut]:
    return [KeyOut.model_validate(row) for row in await api_keys.list_keys(ctx, caller)]


@router.post("/api-keys", status_code=201)
async def create_api_key(body: NewKeyBody, ctx: Ctx, caller: Caller) -> NewKeyOut:
    issued = await api_keys.create(ctx, caller, body.name, body.expires_in_days)
    return NewKeyOut(id=issued.id, name=issued.name, prefix=issued.prefix, key=issued.secret)


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_api_key(key_id: int, ctx: Ctx, caller: Caller) -> None:
    """Revoke a key; it stops working on the next request."""
    await api_keys.revoke(ctx, caller, key_id)


@router.get("/logins")
async def my_logins(ctx: Ctx, caller: Caller, limit: LoginsLimit = 50) -> list[dict[str, Any]]:
    """Your sign-in attempts, newest first: time, address, agent, method, MFA, outcome."""
    return await logins.history(ctx, caller, None, limit)
