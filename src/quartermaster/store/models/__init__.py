"""The data model (DESIGN.md): one module per area, all on one metadata for Alembic."""

from quartermaster.store.models.audit import AuditEvent
from quartermaster.store.models.base import Base
from quartermaster.store.models.datasets import Chunk, Dataset, Document
from quartermaster.store.models.identity import ApiKey, LoginAttempt, RecoveryCode, Session, User
from quartermaster.store.models.ledger import (
    Hold,
    ModelCatalogEntry,
    UsageCounter,
    UsageEvent,
    UsageMonthly,
)
from quartermaster.store.models.orgs import (
    Allocation,
    Membership,
    Organization,
    OrgModel,
    Purchase,
    TokenRequest,
)
from quartermaster.store.models.plans import Plan, PlanPayment, Refill, Subscription
from quartermaster.store.models.rate import RateWindow
from quartermaster.store.models.usage_archive import ArchivedUsage
from quartermaster.store.models.usage_folds import FoldedOrgUsage, FoldedUserUsage, UsageFold

__all__ = [
    "Allocation",
    "ApiKey",
    "ArchivedUsage",
    "AuditEvent",
    "Base",
    "Chunk",
    "Dataset",
    "Document",
    "FoldedOrgUsage",
    "FoldedUserUsage",
    "Hold",
    "LoginAttempt",
    "Membership",
    "ModelCatalogEntry",
    "OrgModel",
    "Organization",
    "Plan",
    "PlanPayment",
    "Purchase",
    "RateWindow",
    "RecoveryCode",
    "Refill",
    "Session",
    "Subscription",
    "TokenRequest",
    "UsageCounter",
    "UsageEvent",
    "UsageFold",
    "UsageMonthly",
    "User",
]
