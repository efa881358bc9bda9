"""Per-member rate limits: how many metered calls, and how many platform tokens (the reserved
worst case), a member may start in one clock minute. Windows are fixed minutes of UTC time, so
every gateway process counts into the same row; a burst can reach twice a limit across a minute
boundary, which is the documented price of one cheap statement per call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from quartermaster.domain.errors import InvalidInput, TooManyRequests


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def active(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


def check(limits: Limits) -> Limits:
    """Refuse limits that cannot work (zero or negative), naming the field."""
    for name, value in (
        ("requests_per_minute", limits.requests_per_minute),
        ("tokens_per_minute", limits.tokens_per_minute),
    ):
        if value is not None and value < 1:
            raise InvalidInput(f"{name} must be at least 1, or null for no limit", param=name)
    return limits


def minute_of(moment: datetime) -> int:
    """Minutes since the Unix epoch: the window `moment` counts in."""
    return int(moment.timestamp()) // 60


def seconds_to_next_window(moment: datetime) -> int:
    return max(1, 60 - int(moment.timestamp()) % 60)


def refusal(limits: Limits, tokens: int, moment: datetime) -> TooManyRequests:
    """The 429 for a call that does not fit this minute's window."""
    wait = seconds_to_next_window(moment)
    if limits.tokens_per_minute is not None and tokens > limits.tokens_per_minute:
        message = (
            f"this call may use {tokens:,} tokens but your organization allows "
            f"{limits.tokens_per_minute:,} per minute; lower max_tokens"
        )
    else:
        message = (
            "your organization's per-minute limit is reached "
            f"({_describe(limits)}); retry in {wait} s"
        )
    return TooManyRequests(
        message,
        code="rate_limit_exceeded",
        details={"retry_after_s": wait, "limits": _describe(limits)},
    )


def _describe(limits: Limits) -> str:
    parts = []
    if limits.requests_per_minute is not None:
        parts.append(f"{limits.requests_per_minute:,} calls")
    if limits.tokens_per_minute is not None:
        parts.append(f"{limits.tokens_per_minute:,} tokens")
    return " and ".join(parts)
