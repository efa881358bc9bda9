"""The activity log: append-only events chained by hash (trail.py), and their verification
(chain.py)."""

from quartermaster.services.audit.trail import (
    GENESIS_HASH,
    AuditEntry,
    event_hash,
    hashed_fields,
    record,
)

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "event_hash",
    "hashed_fields",
    "record",
]
