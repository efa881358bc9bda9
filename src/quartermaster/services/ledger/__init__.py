"""The token ledger: reserve the worst case, settle the actual charge, release or expire the rest.

`reserve` is the one entry point every metered call takes a hold through; settling, releasing and
sweeping follow (transfers.py). The rules a hold obeys are in spending.py (standing and cap),
model_rules.py (the org's model list), rate_window.py (rate limits), counters.py (the cap check
itself); the single-statement forms of the same rules are fast_reserve.py, fast_plan_cap.py and
fast_settle.py. check.py recomputes the invariants, fold.py folds closed months."""

from quartermaster.services.ledger.transfers import (
    Caller,
    HoldReceipt,
    Settlement,
    Usage,
    book,
    release,
    reserve,
    reserve_fully,
    reserve_quickly,
    run_sweeper,
    settle,
    settle_hold,
    sweep_expired,
)

__all__ = [
    "Caller",
    "HoldReceipt",
    "Settlement",
    "Usage",
    "book",
    "release",
    "reserve",
    "reserve_fully",
    "reserve_quickly",
    "run_sweeper",
    "settle",
    "settle_hold",
    "sweep_expired",
]
