"""Settings → Security: two-factor authentication and the linked smart-card certificate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from quartermaster.domain.errors import DomainError
from quartermaster.http.deps import Ctx, certificate
from quartermaster.services.context import Context
from quartermaster.services.identity import cac, mfa
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer, optional_viewer

router = APIRouter(prefix="/settings/security", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]


def _presented_certificate(request: Request) -> str | None:
    try:
        return certificate(request).subject_dn
    except DomainError:
        return None


async def _render(request: Request, ctx: Context, viewer: Viewer, **extra: Any) -> Response:
    fresh = await optional_viewer(request)  # the profile as it is after this request's change
    context = {
        "tab": "security",
        "active": "settings",
        "me": (fresh or viewer).me,
        "presented": _presented_certificate(request),
        **extra,
    }
    return page(request, "settings_security.html", context, 400 if "error" in extra else 200)


@router.get("")
async def security(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    return await _render(request, ctx, viewer)


@router.post("/mfa/enroll")
async def enroll(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    try:
        enrolment = await mfa.start_enrolment(ctx, viewer.principal)
    except DomainError as refused:
        return await _render(request, ctx, viewer, error=refused.message)
    return await _render(request, ctx, viewer, enrolment=enrolment)


@router.post("/mfa/confirm")
async def confirm(request: Request, ctx: Ctx, viewer: SignedIn, code: Text) -> Response:
    try:
        codes = await mfa.confirm_enrolment(ctx, viewer.principal, code.strip())
    except DomainError as refused:
        return await _render(request, ctx, viewer, error=refused.message)
    return await _render(request, ctx, viewer, recovery_codes=codes)


@router.post("/mfa/disable")
async def disable(
    request: Request, ctx: Ctx, viewer: SignedIn, password: Text, code: Text
) -> Response:
    try:
        await mfa.disable(ctx, viewer.principal, password, code.strip())
    except DomainError as refused:
        return await _render(request, ctx, viewer, error=refused.message)
    return await _render(request, ctx, viewer, notice="Two-factor authentication is off.")


@router.post("/cac/link")
async def link_cac(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    try:
        await cac.link(ctx, viewer.principal, certificate(request))
    except DomainError as refused:
        return await _render(request, ctx, viewer, error=refused.message)
    return await _render(request, ctx, viewer, notice="Your certificate is linked.")


@router.post("/cac/unlink")
async def unlink_cac(request: Request, ctx: Ctx, viewer: SignedIn) -> Response:
    await cac.unlink(ctx, viewer.principal)
    return await _render(request, ctx, viewer, notice="Your certificate is unlinked.")
