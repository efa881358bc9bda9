"""Setting and clearing the sign-in cookies, the same way for pages and the JSON API."""

from __future__ import annotations

from starlette.responses import Response

from quartermaster.http.deps import MFA_COOKIE, SESSION_COOKIE
from quartermaster.services.identity.sessions import NewSession
from quartermaster.settings import Settings

MFA_STEP_S = 300


def set_session(response: Response, opened: NewSession, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        opened.token,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    response.delete_cookie(MFA_COOKIE, path="/")


def set_mfa_step(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        MFA_COOKIE,
        token,
        max_age=MFA_STEP_S,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path="/",
    )


def clear(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(MFA_COOKIE, path="/")
