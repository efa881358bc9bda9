"""What every service call needs: the unit of work and the one clock (the composition root
builds it once per process; tests build it with a fixed clock)."""

from __future__ import annotations

from dataclasses import dataclass, field

from quartermaster.domain.clock import Clock, SystemClock
from quartermaster.domain.holds import DEFAULT_HOLD_TTL_S
from quartermaster.domain.pricing import PriceList
from quartermaster.services.settlements import Settlements
from quartermaster.store.uow import UnitOfWork


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
    settlements: Settlements = field(default_factory=Settlements)
    """Metered calls booked after their answers went out (services/settlements.py)."""
