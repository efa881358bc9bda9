"""What every service call needs: the unit of work, the one clock, and what the process keeps
between calls (the composition root, bootstrap.py, builds it once per process; tests build it
with a fixed clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, cast

from quartermaster.domain.clock import Clock, SystemClock
from quartermaster.domain.holds import DEFAULT_HOLD_TTL_S
from quartermaster.domain.pricing import PriceList
from quartermaster.services.settlements import Settlements
from quartermaster.store.uow import UnitOfWork

T = TypeVar("T")


class ProcessMemory:
    """What one process remembers between calls: API keys it checked a moment ago, the reserve's
    guesses, a copy of the catalog. Each part is an instance of a type its owning module defines
    (`part(_Snapshot)`), made on first use; whatever relies on a part re-checks it, so losing
    any of it costs a read, never a wrong charge."""

    def __init__(self) -> None:
        self._parts: dict[type, object] = {}

    def part(self, kind: type[T]) -> T:
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = kind()
        return cast(T, found)


@dataclass(frozen=True)
class SecurityConfig:
    """Secrets and lifetimes the identity services need (from Settings in the app)."""

    secret_key: str = ""
    session_ttl_s: int = 12 * 3600
    session_idle_s: int = 3600


@dataclass(frozen=True)
class Context:
    uow: UnitOfWork
    clock: Clock = field(default_factory=SystemClock)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    prices: PriceList = field(default_factory=PriceList)
    hold_ttl_s: int = DEFAULT_HOLD_TTL_S
    """Deadline of the holds metered calls take; past it the sweeper frees a dead call's tokens."""
    memory: ProcessMemory = field(default_factory=ProcessMemory, compare=False)
    """The process's caches (`ProcessMemory`)."""
    settlements: Settlements = field(default_factory=Settlements)
    """Metered calls booked after their answers went out (services/settlements.py)."""
    reports: UnitOfWork | None = None
    """A hot standby's unit of work, when `QM_DATABASE_REPLICA_URL` is set."""

    @property
    def report_reader(self) -> UnitOfWork:
        """Where an org's metrics pages and exports read: the replica if there is one, so they
        take no work from the primary that meters calls; the primary otherwise."""
        return self.reports or self.uow
