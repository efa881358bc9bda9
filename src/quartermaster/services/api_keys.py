"""API keys for programs: shown once, kept only as a SHA-256 hash beside a visible prefix."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.services import audit
from quartermaster.store.models import ApiKey

KEY_PREFIX = "qm-"
VISIBLE_PREFIX_LENGTH = 11


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
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        audit.AuditEntry(
            action="api_key.create",
            actor_user_id=user_id,
            target_type="api_key",
            target_id=key.id,
            after={"name": name, "prefix": key.prefix},
        ),
        now,
    )
    return IssuedKey(id=key.id, name=name, prefix=key.prefix, secret=secret)
