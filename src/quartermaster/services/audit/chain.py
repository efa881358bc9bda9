"""`qm audit verify`: recompute the activity log's hash chain and name the first broken link.

An event is broken when its `prev_hash` is not the hash of the event before it (one was deleted,
inserted or reordered) or when its `hash` is not the hash of its own fields (it was edited).
Events are read in id order, in batches, so the check runs in bounded memory on any log size.
The chain cannot show that the newest events were cut off the end; docs/activity-log.md says
how to keep an outside copy of the last hash for that.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from quartermaster.services.audit import trail
from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent

BATCH = 5_000


@dataclass(frozen=True)
class BrokenLink:
    event_id: int
    action: str
    created_at: str
    reason: str

    def __str__(self) -> str:
        return f"event {self.event_id} ({self.action} at {self.created_at}): {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    events_checked: int
    last_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def check_link(event: AuditEvent, prev_hash: str) -> str | None:
    """Why `event` does not follow an event hashed `prev_hash`, or None when it does."""
    if event.prev_hash != prev_hash:
        return (
            "its prev_hash is not the previous event's hash: an event before it was removed, "
            "inserted or reordered"
        )
    if event.hash != trail.event_hash(event.prev_hash, trail.hashed_fields(event)):
        return "its hash does not match its content: the event was edited"
    return None


async def verify(ctx: Context) -> ChainReport:
    """Walk the whole chain from the genesis hash; stop at the first broken link."""
    prev, checked, after = trail.GENESIS_HASH, 0, 0
    while True:
        async with ctx.uow.begin(write=False) as tx:
            events = list(
                await tx.session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.id > after)
                    .order_by(AuditEvent.id)
                    .limit(BATCH)
                )
            )
        if not events:
            return ChainReport(checked, prev, None)
        for event in events:
            reason = check_link(event, prev)
            if reason is not None:
                at = event.created_at.isoformat()
                return ChainReport(checked, prev, BrokenLink(event.id, event.action, at, reason))
            prev, checked, after = event.hash, checked + 1, event.id
