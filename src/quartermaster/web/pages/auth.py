"""Sign-in, the TOTP step, CAC sign-in, registration, sign-out, the terms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Form, Request
from fastapi.responses import RedirectResponse, Response

from quartermaster.domain.errors import DomainError
from quartermaster.http import cookies
from quartermaster.http.deps import MFA_COOKIE, Client, Ctx, app_settings, certificate
from quartermaster.services.identity import accounts, cac, sessions, signin
from quartermaster.services.identity.accounts import TERMS_VERSION
from quartermaster.web.render import page
from quartermaster.web.session import MaybeSignedIn, SignedIn

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]


def safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker's link cannot bounce a user to another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/chat"


def _after_first_factor(request: Request, result: signin.SignInResult, target: str) -> Response:
    settings = app_settings(request)
    if result.session is None:
        assert result.mfa_token is not None
        response = RedirectResponse(f"/login/mfa?next={target}", status_code=303)
        cookies.set_mfa_step(response, result.mfa_token, settings)
        return response
    response = RedirectResponse(target, status_code=303)
    cookies.set_session(response, result.session, settings)
    return response


@router.get("/")
async def home(viewer: MaybeSignedIn) -> RedirectResponse:
    return RedirectResponse("/chat" if viewer else "/login", status_code=303)


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", {"next": safe_next(next), "email": ""})


@router.post("/login")
async def login(
    request: Request, ctx: Ctx, client: Client, email: Text, password: Text, next: Text = ""
) -> Response:
    target = safe_next(next)
    try:
        result = await signin.with_password(ctx, email, password, client)
    except DomainError as refused:
        context = {"next": target, "email": email, "error": refused.message}
        return page(request, "login.html", context, status=401)
    return _after_first_factor(request, result, target)


@router.get("/login/mfa")
async def mfa_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login_mfa.html", {"next": safe_next(next)})


@router.post("/login/mfa")
async def mfa(
    request: Request,
    ctx: Ctx,
    client: Client,
    code: Text,
    next: Text = "",
    step: Annotated[str | None, Cookie(alias=MFA_COOKIE)] = None,
) -> Response:
    target = safe_next(next)
    try:
        opened = await signin.with_mfa_code(ctx, step or "", code.strip(), client)
    except DomainError as refused:
        return page(request, "login_mfa.html", {"next": target, "error": refused.message}, 401)
    response = RedirectResponse(target, status_code=303)
    cookies.set_session(response, opened, app_settings(request))
    return response


@router.post("/login/cac")
async def cac_login(request: Request, ctx: Ctx, client: Client, next: Text = "") -> Response:
    target = safe_next(next)
    try:
        result = await cac.sign_in(ctx, certificate(request), client)
    except DomainError as refused:
        context = {"next": target, "email": "", "error": refused.message}
        return page(request, "login.html", context, status=401)
    return _after_first_factor(request, result, target)


@router.get("/register")
async def register_form(request: Request) -> Response:
    blank = {"name": "", "email": ""}
    return page(request, "register.html", {"form": blank, "terms_version": TERMS_VERSION})


@router.post("/register")
async def register(
    request: Request,
    ctx: Ctx,
    email: Text,
    password: Text,
    name: Text = "",
    accept_terms: Text = "",
) -> Response:
    form = accounts.Registration(email, password, name, accept_terms == "yes")
    try:
        await accounts.register(ctx, form)
    except DomainError as refused:
        context = {
            "form": {"name": name, "email": email},
            "terms_version": TERMS_VERSION,
            "error": refused.message,
        }
        return page(request, "register.html", context, status=400)
    context = {
        "next": "/settings/security",
        "email": email,
        "notice": "Account created. Sign in, then set up two-factor authentication.",
    }
    return page(request, "login.html", context)


@router.post("/logout")
async def logout(ctx: Ctx, viewer: SignedIn) -> Response:
    await sessions.end(ctx, viewer.principal)
    response = RedirectResponse("/login", status_code=303)
    cookies.clear(response)
    return response


@router.get("/terms")
async def terms(request: Request) -> Response:
    return page(request, "terms.html", {"terms_version": TERMS_VERSION})
