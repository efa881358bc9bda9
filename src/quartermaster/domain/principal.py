"""Who is acting. Every service call receives one and checks it; routes never decide alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quartermaster.domain.errors import PermissionDenied

Via = Literal["session", "api_key", "cli"]


@dataclass(frozen=True)
class Principal:
    """A signed-in user (by session or API key), or the operator at the command line.

    `mfa_verified` is true only for a session that passed TOTP (or a recovery code) since sign-in,
    and for the command line, whose user already holds the server's database credentials.
    """

    user_id: int | None
    is_operator: bool
    mfa_verified: bool
    via: Via
    session_key: str | None = None
    """The hash that identifies the session, when the principal came by cookie."""

    @property
    def uid(self) -> int:
        """The acting user's id; the command line has none and must not reach user-only code."""
        assert self.user_id is not None, "this action needs a signed-in user"
        return self.user_id

    @classmethod
    def command_line(cls) -> Principal:
        return cls(user_id=None, is_operator=True, mfa_verified=True, via="cli")


def require_operator(principal: Principal) -> None:
    """Operators only, and only with MFA verified in this session."""
    if not principal.is_operator:
        raise PermissionDenied("only a platform operator can do this", code="operator_required")
    require_mfa(principal)


def require_mfa(principal: Principal) -> None:
    """Admin work needs MFA enrolled and verified in the current session; say how to get there."""
    if not principal.mfa_verified:
        raise PermissionDenied(
            "administration needs multi-factor authentication: enrol TOTP under Settings → "
            "Security, then sign in again with your code",
            code="mfa_required",
        )
