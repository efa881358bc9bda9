"""Who is calling, for every /api route: a bearer API key, or a session cookie with its CSRF
token on every state change. Certificates count only when a trusted proxy forwarded them."""

from __future__ import annotations

import hmac
from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Depends, Request

from quartermaster.domain.errors import NotAuthenticated, PermissionDenied
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import api_keys, cac, sessions
from quartermaster.settings import Settings

SESSION_COOKIE = "qm_session"
MFA_COOKIE = "qm_mfa_step"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CERT_VERIFY_HEADER = "X-SSL-Client-Verify"
CERT_DN_HEADER = "X-SSL-Client-S-DN"


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_info(request: Request) -> sessions.ClientInfo:
    """The caller's address: the proxy's `X-Real-IP` when a trusted proxy sent it."""
    host = request.client.host if request.client else None
    forwarded = request.headers.get("x-real-ip")
    if forwarded and _from_trusted_proxy(request, app_settings(request).trusted_proxies):
        host = forwarded.strip()[:64]
    return sessions.ClientInfo(ip=host, user_agent=request.headers.get("user-agent"))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when they sent no credential at all."""
    ctx = context(request)
    token = bearer_token(request)
    if token is not None:
        return await api_keys.authenticate(ctx, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    active = await sessions.authenticate(ctx, cookie)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), active.csrf_token.encode()):
            raise PermissionDenied(
                f"missing or wrong {CSRF_HEADER} header; reload the page and retry",
                code="csrf_failed",
            )
    return active.principal


async def principal(request: Request) -> Principal:
    """The caller, or 401 saying how to authenticate."""
    found = await optional_principal(request)
    if found is None:
        raise NotAuthenticated(
            "sign in, or send an API key as 'Authorization: Bearer qm-…'", code="not_signed_in"
        )
    return found


def _from_trusted_proxy(request: Request, trusted: list[str]) -> bool:
    if request.client is None or not trusted:
        return False
    try:
        address = ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in ip_network(entry, strict=False) for entry in trusted)


def certificate(request: Request) -> cac.Certificate:
    """The client certificate a trusted proxy verified; headers from anyone else are ignored."""
    if not _from_trusted_proxy(request, app_settings(request).trusted_proxies):
        return cac.checked(None, None)
    headers = request.headers
    return cac.checked(headers.get(CERT_DN_HEADER), headers.get(CERT_VERIFY_HEADER))


# FastAPI runs a plain `def` dependency in a worker thread; every metered call would pay a
# thread hop and a wait for the GIL (up to its 5 ms switch interval). These are async.


async def _context(request: Request) -> Context:
    return context(request)


async def _client_info(request: Request) -> sessions.ClientInfo:
    return client_info(request)


async def _certificate(request: Request) -> cac.Certificate:
    return certificate(request)


Ctx = Annotated[Context, Depends(_context)]
Caller = Annotated[Principal, Depends(principal)]
Client = Annotated[sessions.ClientInfo, Depends(_client_info)]
Cert = Annotated[cac.Certificate, Depends(_certificate)]
