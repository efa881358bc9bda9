"""Signing in: password (then TOTP when enrolled) or a CAC certificate (then TOTP when enrolled).

Every attempt lands in the login history. Failures are committed before the refusal is raised,
so back-off counts them even though the request fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.emails import normalize_email
from quartermaster.domain.errors import DomainError, NotAuthenticated, TooManyRequests
from quartermaster.domain.lockout import (
    ADDRESS_WINDOW,
    AccountState,
    address_blocked,
    lock_after_failure,
    seconds_locked,
)
from quartermaster.services.context import Context
from quartermaster.services.identity import logins, mfa, passwords, signed_tokens
from quartermaster.services.identity.sessions import ClientInfo, NewSession, open_session
from quartermaster.store.models import User

MFA_STEP_TTL = timedelta(minutes=5)
WRONG_CREDENTIALS = "email or password is wrong"


@dataclass(frozen=True)
class SignInResult:
    """Either a session, or a token for the second step when a TOTP code is needed."""

    session: NewSession | None = None
    mfa_token: str | None = None


def _comparable(email: str) -> str:
    try:
        return normalize_email(email)
    except DomainError:
        return email.strip().lower()[:320]


async def _refusal(
    session: AsyncSession, user: User | None, password: str, client: ClientInfo, now: datetime
) -> tuple[str, DomainError] | None:
    """Why this password attempt is refused, in order of precedence; None when it succeeds."""
    if address_blocked(await logins.recent_failures_from(session, client.ip, now)):
        retry = {"retry_after_s": int(ADDRESS_WINDOW.total_seconds())}
        message = "too many failed sign-ins from your address; wait and try again"
        return "address_throttled", TooManyRequests(
            message, code="address_throttled", details=retry
        )
    if user is not None and (
        wait := seconds_locked(AccountState(user.failed_logins, user.locked_until), now)
    ):
        message = (
            f"too many failed sign-ins for this account; try again in {wait} s "
            "(or sign in with your CAC)"
        )
        return "locked", TooManyRequests(
            message, code="account_locked", details={"retry_after_s": wait}
        )
    if not passwords.verify(user, password):
        if user is not None:
            count_failure(user, now)
        return "bad_password", NotAuthenticated(WRONG_CREDENTIALS, code="bad_credentials")
    return None


def count_failure(user: User, now: datetime) -> None:
    user.failed_logins += 1
    user.locked_until = lock_after_failure(user.failed_logins, now)


async def with_password(
    ctx: Context, email: str, password: str, client: ClientInfo
) -> SignInResult:
    now, normalized = ctx.clock.now(), _comparable(email)
    async with ctx.uow.begin() as tx:
        user = await tx.session.scalar(select(User).where(User.email_normalized == normalized))
        refused = await _refusal(tx.session, user, password, client, now)
        if refused is None:
            assert user is not None
            result = await after_first_factor(ctx, tx.session, user, "password", client)
            await tx.commit()
            return result
        reason, error = refused
        attempt = logins.Attempt(normalized, "password", False, reason, user.id if user else None)
        logins.record(tx.session, attempt, client, now)
        await tx.commit()
    raise error


async def after_first_factor(
    ctx: Context, session: AsyncSession, user: User, method: str, client: ClientInfo
) -> SignInResult:
    """Password or certificate accepted: ask for TOTP when enrolled, else open the session."""
    now = ctx.clock.now()
    if user.mfa_enabled_at is not None:
        payload = {"uid": user.id, "m": method}
        token = signed_tokens.sign(ctx.security.secret_key, "mfa", payload, now + MFA_STEP_TTL)
        return SignInResult(mfa_token=token)
    user.failed_logins, user.locked_until = 0, None
    logins.record(session, logins.Attempt(user.email, method, True, user_id=user.id), client, now)
    opened = await open_session(session, user.id, method, False, client, now, ctx.security)
    return SignInResult(session=opened)


async def with_mfa_code(ctx: Context, mfa_token: str, code: str, client: ClientInfo) -> NewSession:
    """The second step: a TOTP (or recovery) code turns the first factor into a session."""
    now = ctx.clock.now()
    payload = signed_tokens.verify(ctx.security.secret_key, "mfa", mfa_token, now)
    if payload is None:
        raise NotAuthenticated("the sign-in step expired; sign in again", code="mfa_step_expired")
    async with ctx.uow.begin() as tx:
        user = await tx.session.get(User, int(payload["uid"]))
        if user is None or user.mfa_enabled_at is None:
            raise NotAuthenticated("sign in again", code="mfa_step_expired")
        attempt = logins.Attempt(
            user.email, str(payload["m"]), False, user_id=user.id, mfa_used=True
        )
        wait = seconds_locked(AccountState(user.failed_logins, user.locked_until), now)
        if not wait and await mfa.check_code(tx.session, user, code, ctx):
            user.failed_logins, user.locked_until = 0, None
            logins.record(tx.session, replace(attempt, success=True), client, now)
            opened = await open_session(
                tx.session, user.id, attempt.method, True, client, now, ctx.security
            )
            await tx.commit()
            return opened
        if not wait:
            count_failure(user, now)
        logins.record(
            tx.session, replace(attempt, reason="locked" if wait else "bad_mfa_code"), client, now
        )
        await tx.commit()
    if wait:
        raise TooManyRequests(
            f"too many failed attempts; try again in {wait} s",
            code="account_locked",
            details={"retry_after_s": wait},
        )
    raise NotAuthenticated(
        "that code is not valid; try the current one", param="code", code="bad_mfa_code"
    )
