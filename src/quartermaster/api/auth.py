"""Registration and sign-in: /api/auth/*. Sign-in sets an HttpOnly, SameSite session cookie and
returns the CSRF token that every later state change must send in X-CSRF-Token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Response
from pydantic import BaseModel, Field

from quartermaster.http import cookies
from quartermaster.http.deps import (
    MFA_COOKIE,
    Caller,
    Cert,
    Client,
    Ctx,
    app_settings,
)
from quartermaster.services.identity import accounts, cac, sessions, signin
from quartermaster.settings import Settings

router = APIRouter(prefix="/api/auth", tags=["sign-in"])
SettingsDep = Annotated[Settings, Depends(app_settings)]


class RegisterBody(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    name: str = Field(default="", max_length=200)
    accept_terms: bool = False


class LoginBody(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class MfaBody(BaseModel):
    code: str = Field(min_length=6, max_length=20)
    mfa_token: str | None = Field(default=None, max_length=2000)


class SignedIn(BaseModel):
    user_id: int | None = None
    csrf_token: str | None = None
    mfa_verified: bool = False
    mfa_required: bool = False
    mfa_token: str | None = None


def _deliver(response: Response, result: signin.SignInResult, settings: Settings) -> SignedIn:
    """Set the cookie for whichever step comes next, and describe it in the body."""
    if result.session is None:
        assert result.mfa_token is not None
        cookies.set_mfa_step(response, result.mfa_token, settings)
        return SignedIn(mfa_required=True, mfa_token=result.mfa_token)
    return _session_cookie(response, result.session, settings)


def _session_cookie(
    response: Response, opened: sessions.NewSession, settings: Settings
) -> SignedIn:
    cookies.set_session(response, opened, settings)
    return SignedIn(
        user_id=opened.user_id, csrf_token=opened.csrf_token, mfa_verified=opened.mfa_verified
    )


@router.post("/register", status_code=201)
async def register(body: RegisterBody, ctx: Ctx) -> dict[str, int]:
    """Create an account; `accept_terms` must be true (the terms version is recorded)."""
    form = accounts.Registration(body.email, body.password, body.name, body.accept_terms)
    return {"user_id": await accounts.register(ctx, form)}


@router.post("/login")
async def login(
    body: LoginBody, response: Response, ctx: Ctx, client: Client, settings: SettingsDep
) -> SignedIn:
    """Password sign-in. With MFA on, answers `mfa_required` and the token for /mfa."""
    result = await signin.with_password(ctx, body.email, body.password, client)
    return _deliver(response, result, settings)


@router.post("/mfa")
async def verify_mfa(
    body: MfaBody,
    response: Response,
    ctx: Ctx,
    client: Client,
    settings: SettingsDep,
    step_cookie: Annotated[str | None, Cookie(alias=MFA_COOKIE)] = None,
) -> SignedIn:
    """Second step: a TOTP or recovery code, with the token from /login (body or cookie)."""
    token = body.mfa_token or step_cookie or ""
    opened = await signin.with_mfa_code(ctx, token, body.code, client)
    return _session_cookie(response, opened, settings)


@router.post("/cac")
async def cac_login(
    response: Response, ctx: Ctx, client: Client, certificate: Cert, settings: SettingsDep
) -> SignedIn:
    """Sign in with the smart card the reverse proxy verified."""
    result = await cac.sign_in(ctx, certificate, client)
    return _deliver(response, result, settings)


@router.post("/logout", status_code=204)
async def logout(response: Response, ctx: Ctx, caller: Caller) -> None:
    """End this session; the cookie stops working at once."""
    await sessions.end(ctx, caller)
    cookies.clear(response)
