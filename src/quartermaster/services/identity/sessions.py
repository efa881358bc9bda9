"""Server-side sessions. The cookie holds a random token; the database keeps only its hash, a
CSRF token, and whether MFA was verified. Sessions end on sign-out, after an absolute lifetime,
or after being idle too long."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import NotAuthenticated
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context, SecurityConfig
from quartermaster.store.models import Session, User

TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class NewSession:
    token: str
    """The cookie value; only its hash is stored."""
    csrf_token: str
    user_id: int
    mfa_verified: bool
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    session: AsyncSession,
    user_id: int,
    method: str,
    mfa_verified: bool,
    client: ClientInfo,
    now: datetime,
    config: SecurityConfig,
) -> NewSession:
    """Start a session in the caller's transaction. A new token every time: no fixation."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=config.session_ttl_s)
    session.add(
        Session(
            token_hash=token_hash(token),
            user_id=user_id,
            csrf_token=csrf,
            mfa_verified=mfa_verified,
            method=method,
            ip=client.ip,
            user_agent=(client.user_agent or "")[:512],
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )
    return NewSession(token, csrf, user_id, mfa_verified, expires_at)


@dataclass(frozen=True)
class ActiveSession:
    principal: Principal
    csrf_token: str


async def authenticate(ctx: Context, token: str) -> ActiveSession:
    """The principal behind a session cookie, or NotAuthenticated when it ended."""
    now, key = ctx.clock.now(), token_hash(token)
    idle = timedelta(seconds=ctx.security.session_idle_s)
    async with ctx.uow.begin(write=False) as tx:
        row = (
            await tx.session.execute(
                select(Session, User.is_operator)
                .join(User, User.id == Session.user_id)
                .where(Session.token_hash == key)
            )
        ).first()
    if row is None or row[0].expires_at <= now or row[0].last_seen_at + idle <= now:
        raise NotAuthenticated("your session has ended; sign in again", code="session_expired")
    record, is_operator = row
    if now - record.last_seen_at >= TOUCH_EVERY:
        async with ctx.uow.begin() as tx:
            await tx.session.execute(
                update(Session).where(Session.token_hash == key).values(last_seen_at=now)
            )
            await tx.commit()
    principal = Principal(record.user_id, is_operator, record.mfa_verified, "session", key)
    return ActiveSession(principal, record.csrf_token)


async def end(ctx: Context, principal: Principal) -> None:
    """Sign out: the session row is deleted, so the cookie is worthless from now on."""
    if principal.session_key is None:
        return
    async with ctx.uow.begin() as tx:
        await tx.session.execute(delete(Session).where(Session.token_hash == principal.session_key))
        await tx.commit()


async def end_all_for(session: AsyncSession, user_id: int) -> None:
    """End every session of a user (after an MFA reset or a password change)."""
    await session.execute(delete(Session).where(Session.user_id == user_id))
