"""Errors on pages: sign-in needed → the sign-in page (coming back afterwards); anything else →
an error page with the same message the API would give."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from quartermaster.domain.errors import DomainError, NotAuthenticated
from quartermaster.http.errors import STATUS_AND_TYPE
from quartermaster.web.render import page

TITLES = {403: "Not allowed", 404: "Not found", 409: "Changed meanwhile", 429: "Slow down"}
TITLES_BY_CODE = {"mfa_required": "Two-factor authentication needed", "not_admin": "For admins"}


def render_error(request: Request, exc: DomainError) -> Response:
    if isinstance(exc, NotAuthenticated):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/login?next={target}", status_code=303)
    status = next(code for cls, (code, _) in STATUS_AND_TYPE.items() if isinstance(exc, cls))
    title = TITLES_BY_CODE.get(exc.code or "") or TITLES.get(status, "Something needs attention")
    context = {"title": title, "message": exc.message, "code": exc.code}
    return page(request, "error.html", context, status=status)
