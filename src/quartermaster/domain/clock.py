"""One clock for the whole process, injected so that tests can stand at any instant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The machine's clock, always in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
