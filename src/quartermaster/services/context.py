"""What every service call needs: the unit of work and the one clock (the composition root
builds it once per process; tests build it with a fixed clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

from quartermaster.domain.clock import Clock, SystemClock
from quartermaster.store.uow import UnitOfWork


@dataclass(frozen=True)
class Context:
    uow: UnitOfWork
    clock: Clock = field(default_factory=SystemClock)
