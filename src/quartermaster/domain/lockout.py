"""Back-off after failed sign-ins, bounded so it can slow an attacker but never lock a user out
for good.

Per account: the first few failures are free; after that each failure locks password sign-in for
a delay that doubles up to a ceiling, and a success clears it. CAC sign-in is not affected.
Per address: an address that fails too often within a window is refused for every account until
the window has passed, so one attacker cannot keep an account locked indefinitely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FREE_FAILURES = 5
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
ADDRESS_WINDOW = timedelta(minutes=15)
ADDRESS_MAX_FAILURES = 30


@dataclass(frozen=True)
class AccountState:
    failed_logins: int
    locked_until: datetime | None


def lock_after_failure(failed_logins: int, now: datetime) -> datetime | None:
    """Where the lock ends after the `failed_logins`-th consecutive failure (None: no lock)."""
    if failed_logins < FREE_FAILURES:
        return None
    doublings = min(failed_logins - FREE_FAILURES, 10)
    factor: int = 2**doublings  # typeshed types int ** int as Any: a negative power is a float
    return now + min(FIRST_LOCK * factor, MAX_LOCK)


def seconds_locked(state: AccountState, now: datetime) -> int:
    """How long password sign-in stays refused for this account (0: not locked)."""
    if state.locked_until is None or state.locked_until <= now:
        return 0
    return max(1, int((state.locked_until - now).total_seconds() + 0.999))


def address_blocked(recent_failures_from_address: int) -> bool:
    return recent_failures_from_address >= ADDRESS_MAX_FAILURES
