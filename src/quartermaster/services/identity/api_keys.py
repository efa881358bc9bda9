"""API keys for programs: shown once, kept only as a SHA-256 hash beside a visible prefix.

A key may call admin endpoints only when it was created from an MFA-verified session and its
owner still has MFA on: a key carries the second factor it was born with, nothing more.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BindParameter, ColumnElement, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from quartermaster.domain.principal import Principal
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.store import hot
from quartermaster.store.models import ApiKey, User

KEY_PREFIX = "qm-"
VISIBLE_PREFIX_LENGTH = 11
MAX_EXPIRY_DAYS = 3650
LAST_USED_GRANULARITY = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedKey:
    id: int
    name: str
    prefix: str
    secret: str
    """The whole key; it exists only in this value and is never stored or shown again."""


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue(
    session: AsyncSession,
    user_id: int,
    name: str,
    now: datetime,
    expires_at: datetime | None = None,
    mfa_at_creation: bool = False,
) -> IssuedKey:
    """Create a key for `user_id` inside the caller's transaction, with its audit event."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        user_id=user_id,
        name=name,
        prefix=secret[:VISIBLE_PREFIX_LENGTH],
        key_hash=key_hash(secret),
        created_at=now,
        expires_at=expires_at,
        mfa_at_creation=mfa_at_creation,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        audit.AuditEntry(
            action="api_key.create",
            actor_user_id=user_id,
            org_id=await authz.org_of(session, user_id),
            target_type="api_key",
            target_id=key.id,
            after={"name": name, "prefix": key.prefix},
        ),
        now,
    )
    return IssuedKey(id=key.id, name=name, prefix=key.prefix, secret=secret)


async def create(
    ctx: Context, principal: Principal, name: str, expires_in_days: int | None = None
) -> IssuedKey:
    """A signed-in user creates a key for themself; the secret is returned this once."""
    if principal.via == "api_key":
        raise PermissionDenied("sign in to create API keys; a key cannot create keys")
    clean = name.strip()
    if not 1 <= len(clean) <= 200:
        raise InvalidInput("give the key a name of 1 to 200 characters", param="name")
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(
            f"expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}", param="expires_in_days"
        )
    now = ctx.clock.now()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    async with ctx.uow.begin() as tx:
        issued = await issue(
            tx.session, principal.uid, clean, now, expires_at, principal.mfa_verified
        )
        await tx.commit()
    return issued


async def list_keys(ctx: Context, principal: Principal) -> list[dict[str, object]]:
    """The user's keys, newest first, with prefixes only: a key is never shown twice."""
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.scalars(
            select(ApiKey).where(ApiKey.user_id == principal.uid).order_by(ApiKey.id.desc())
        )
        return [
            {
                "id": row.id,
                "name": row.name,
                "prefix": row.prefix,
                "created_at": row.created_at,
                "expires_at": row.expires_at,
                "revoked_at": row.revoked_at,
                "last_used_at": row.last_used_at,
            }
            for row in rows
        ]


async def revoke(ctx: Context, principal: Principal, key_id: int) -> None:
    """Revoke one of your keys; it stops working on the very next request."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        key = await tx.session.get(ApiKey, key_id)
        if key is None or key.user_id != principal.user_id:
            raise NotFound("no such API key", param="key_id")
        if key.revoked_at is None:
            key.revoked_at = now
            entry = audit.AuditEntry(
                "api_key.revoke",
                principal.user_id,
                await authz.org_of(tx.session, key.user_id),
                target_type="api_key",
                target_id=key.id,
                after={"prefix": key.prefix},
            )
            await audit.record(tx.session, entry, now)
        await tx.commit()


_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.user_id,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.last_used_at,
        ApiKey.mfa_at_creation,
        User.is_operator,
        User.mfa_enabled_at,
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.key_hash == bindparam("key_hash"))
)
_TOUCH = (
    update(ApiKey)
    .where(ApiKey.id == bindparam("key_id"))
    .values(last_used_at=bindparam("now", type_=ApiKey.__table__.c.last_used_at.type))
)
"""Built once: every metered call runs these (store/hot.py)."""


def still_valid(
    hashed: BindParameter[str], user_id: BindParameter[int], at: BindParameter[datetime]
) -> ColumnElement[bool]:
    """The rule `authenticate` applies, as SQL for a statement that checks a remembered key
    itself (services/ledger/fast_reserve.py): the key is `user_id`'s, not revoked, and not
    expired `at` that moment."""
    return exists().where(
        ApiKey.key_hash == hashed,
        ApiKey.user_id == user_id,
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > at),
    )


async def authenticate(ctx: Context, secret: str) -> Principal:
    """The principal behind a bearer key, or NotAuthenticated; refreshes last-used time.

    On every metered call, so it is one statement (plus a rare last-used update), outside any
    transaction."""
    now = ctx.clock.now()
    async with hot.connect(ctx.uow) as connection:
        row = await connection.first(_KEY_LOOKUP, {"key_hash": key_hash(secret)})
        if row is None or row["revoked_at"] is not None:
            raise NotAuthenticated("invalid API key", code="invalid_api_key")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise NotAuthenticated(
                "this API key has expired; create a new one", code="expired_api_key"
            )
        last_used = row["last_used_at"]
        if last_used is None or now - last_used >= LAST_USED_GRANULARITY:
            await connection.execute(_TOUCH, {"key_id": row["id"], "now": now})
    mfa = row["mfa_at_creation"] and row["mfa_enabled_at"] is not None
    return Principal(row["user_id"], row["is_operator"], mfa, "api_key")
