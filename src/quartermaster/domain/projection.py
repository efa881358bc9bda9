"""Where this month's usage will end if it goes on as it has gone so far.

Method (linear burn rate): the rate is the tokens used since the month began divided by the time
elapsed since then; the projection is the tokens used plus that rate times the time left. Before
an hour has passed the rate says little, so the projection is the usage so far and `confident`
is false. When a pool is given and the projection passes it, `exhausted_at` is the moment the
pool runs out at that rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_ELAPSED = timedelta(hours=1)


@dataclass(frozen=True)
class Projection:
    used_tokens: int
    projected_tokens: int
    tokens_per_day: int
    elapsed_fraction: float
    confident: bool
    exhausted_at: datetime | None = None


def project_month_end(
    used_tokens: int, start: datetime, end: datetime, now: datetime, pool_tokens: int | None = None
) -> Projection:
    """Project `used_tokens` (used from `start` until `now`) to `end`; see the module docstring."""
    assert start < end, "a month starts before it ends"
    assert used_tokens >= 0, "usage is never negative"
    now = min(max(now, start), end)
    elapsed, total = now - start, end - start
    fraction = elapsed / total
    if elapsed < MIN_ELAPSED:
        return Projection(used_tokens, used_tokens, 0, fraction, False)
    per_second = used_tokens / elapsed.total_seconds()
    projected = used_tokens + round(per_second * (end - now).total_seconds())
    exhausted = None
    if pool_tokens is not None and per_second > 0 and projected > pool_tokens:
        exhausted = max(now, start + timedelta(seconds=pool_tokens / per_second))
    return Projection(used_tokens, projected, round(per_second * 86_400), fraction, True, exhausted)
