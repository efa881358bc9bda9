"""Who is looking at a page: the signed-in session (cookie), its CSRF token and profile.

Pages that need a viewer get one or are redirected to /login; forms that change state must
carry the CSRF token (hidden field `csrf_token`, or the X-CSRF-Token header HTMX sends).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from quartermaster.domain.errors import DomainError, NotAuthenticated, PermissionDenied
from quartermaster.domain.principal import Principal
from quartermaster.http.deps import CSRF_HEADER, SESSION_COOKIE, context
from quartermaster.services.identity import profile, sessions


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    csrf: str
    me: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        return self.me.get("role") == "admin"


async def optional_viewer(request: Request) -> Viewer | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    ctx = context(request)
    try:
        active = await sessions.authenticate(ctx, cookie)
    except DomainError:
        return None
    viewer = Viewer(active.principal, active.csrf_token, await profile.me(ctx, active.principal))
    request.state.viewer = viewer
    return viewer


async def viewer(request: Request) -> Viewer:
    found = await optional_viewer(request)
    if found is None:
        raise NotAuthenticated("sign in to continue", code="login_required")
    if request.method not in ("GET", "HEAD"):
        await _check_csrf(request, found.csrf)
    return found


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else ""
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "this form expired or did not come from this site; reload the page and try again",
            code="csrf_failed",
        )


SignedIn = Annotated[Viewer, Depends(viewer)]
MaybeSignedIn = Annotated[Viewer | None, Depends(optional_viewer)]
