"""The token ledger: reserve the worst case, settle the actual charge, release or expire the rest.

`reserve` is the one entry point every metered call takes a hold through; settling and releasing
follow (transfers.py), and expiry (sweeper.py). The rules a hold obeys are in spending.py
(standing and cap), model_rules.py (the org's model list), rate_window.py (rate limits) and
counters.py (the cap check itself); fast_reserve.py and fast_plan_cap.py build the single
statement from those same rules, fast_settle.py books a settlement in one statement. check.py
recomputes the invariants, fold.py folds closed months, partitioning.py partitions usage events
by month and archive.py archives old months' events. `__all__` is what the rest of the code
may use (tests/unit/test_public_surface.py keeps it so)."""

from quartermaster.services.ledger.rows import Usage
from quartermaster.services.ledger.sweeper import run_sweeper, sweep_expired
from quartermaster.services.ledger.transfers import (
    HoldReceipt,
    Settlement,
    book,
    release,
    reserve,
    settle,
    settle_hold,
)

__all__ = [
    "HoldReceipt",
    "Settlement",
    "Usage",
    "archive",
    "book",
    "check",
    "fold",
    "model_rules",
    "partitioning",
    "release",
    "reserve",
    "run_sweeper",
    "settle",
    "settle_hold",
    "spending",
    "sweep_expired",
]
