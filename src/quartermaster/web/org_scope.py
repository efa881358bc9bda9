"""Which organization an admin page is about, and who may open one at all.

Admins manage their own organization; operators pick one with `?org=ID`. Someone who may never
manage one, or an admin without TOTP verified in this session, gets a page that says why and
what to do, before any service is called (each service checks again). An admin asking for
another org's id gets the services' 404, so ids reveal nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from quartermaster.domain.errors import InvalidInput, PermissionDenied
from quartermaster.web.session import SignedIn, Viewer

MFA_NEEDED = (
    "Managing an organization needs two-factor authentication verified in this session. "
    "Turn it on under Settings → Security; if it is already on, sign out and sign in again "
    "with a code from your authenticator app."
)
OPERATORS_ONLY = "These pages are for the platform's operators."
ADMINS_ONLY = (
    "Only your organization's administrators can manage it. Ask one of them if you need "
    "more tokens, or request them under Settings → Tokens."
)


def require_manager(viewer: Viewer) -> None:
    """Admins and operators, with MFA verified; the refusal explains itself on the page."""
    if not (viewer.is_admin or viewer.me.get("is_operator")):
        raise PermissionDenied(ADMINS_ONLY, code="not_admin")
    if not viewer.principal.mfa_verified:
        raise PermissionDenied(MFA_NEEDED, code="mfa_required")


async def operator_viewer(viewer: SignedIn) -> Viewer:
    """Operators with MFA verified (the services check again)."""
    if not viewer.me.get("is_operator"):
        raise PermissionDenied(OPERATORS_ONLY, code="operator_required")
    if not viewer.principal.mfa_verified:
        raise PermissionDenied(MFA_NEEDED, code="mfa_required")
    return viewer


async def managed_org(viewer: SignedIn, org: str | None = None) -> int:
    """The org the page is about: `?org=` when given, else the admin's own."""
    require_manager(viewer)
    if org:
        if not org.isdigit() or len(org) > 18:
            raise InvalidInput("org must be an organization's number", param="org")
        return int(org)
    own = viewer.me.get("org_id")
    if viewer.is_admin and own is not None:
        return int(own)
    raise InvalidInput(
        "choose an organization from the list of enterprise accounts", code="org_required"
    )


ManagedOrg = Annotated[int, Depends(managed_org)]
OperatorViewer = Annotated[Viewer, Depends(operator_viewer)]
