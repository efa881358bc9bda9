"""The activity log: append-only events chained by hash, written inside the caller's transaction.

Each event's hash covers its content and the previous event's hash, so editing or deleting any
event breaks every link after it (`qm audit verify` finds the first broken one). Appends are
serialized (an advisory lock on PostgreSQL; SQLite writers are serialized already), which keeps
the chain a single line even with many server processes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.store.db import dialect_name
from quartermaster.store.models import AuditEvent

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 7_310_001


@dataclass(frozen=True)
class AuditEntry:
    """What happened, by whom, to what; `before`/`after` hold only the fields that changed."""

    action: str
    actor_user_id: int | None = None
    org_id: int | None = None
    target_type: str | None = None
    target_id: str | int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    ip: str | None = None


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The link hash: sha256 over the previous hash and the event's canonical JSON."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "org_id": event.org_id,
        "actor_user_id": event.actor_user_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "before": event.before,
        "after": event.after,
        "ip": event.ip,
        "created_at": event.created_at.isoformat(),
    }


async def record(session: AsyncSession, entry: AuditEntry, now: datetime) -> AuditEvent:
    """Append `entry` to the chain in the session's transaction; it commits with the change."""
    if dialect_name(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    last = await session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        org_id=entry.org_id,
        actor_user_id=entry.actor_user_id,
        action=entry.action,
        target_type=entry.target_type,
        target_id=None if entry.target_id is None else str(entry.target_id),
        before=entry.before,
        after=entry.after,
        ip=entry.ip,
        created_at=now,
        prev_hash=last or GENESIS_HASH,
    )
    event.hash = event_hash(event.prev_hash, hashed_fields(event))
    session.add(event)
    await session.flush()
    return event
