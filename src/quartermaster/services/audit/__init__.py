"""The activity log: append-only events chained by hash (trail.py), and their verification
(chain.py)."""

from quartermaster.services.audit.trail import (
    AuditEntry,
    record,
)

__all__ = [
    "AuditEntry",
    "chain",
    "record",
]
