"""Random sequences of reserve, settle, release and expiry, checked step by step against a
slow and obvious model of one member's month, with `qm ledger check`'s invariants after each."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from quartermaster.domain.errors import Conflict, QuotaExceeded
from quartermaster.domain.holds import HoldAlreadyResolved
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import check
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import PRICED, add_member, enable_priced_model
from tests.integration.test_ledger import counter

T = TypeVar("T")
CAP = 5_000
PERIOD = "2026-11"
START = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def quoted(prompt: int, completion: int) -> int:
    """ceil(prompt × 1.5 + completion × 6), in integers, independently of the Decimal code."""
    return -(-(3 * prompt + 12 * completion) // 2)


class LedgerModel(RuleBasedStateMachine):
    """One member, a dict ledger beside the real one; every rule says what the user would see."""

    runner: asyncio.Runner
    ctx: Context

    def __init__(self) -> None:
        super().__init__()
        self.clock: FixedClock = self.ctx.clock  # type: ignore[assignment]
        self.clock.set(START)
        self.user_id = self.run(add_member(self.ctx, inference_cap=CAP)).user_id
        self.used = 0
        self.pending: dict[str, tuple[int, datetime]] = {}
        self.state: dict[str, str] = {}
        self.settled: dict[str, tuple[int, int, int]] = {}

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(work)

    def request_id(self) -> str:
        return f"{self.user_id}-{len(self.state)}"

    @rule(
        prompt=st.integers(0, 300), max_output=st.integers(0, 300), ttl=st.sampled_from([60, 600])
    )
    def reserve(self, prompt: int, max_output: int, ttl: int) -> None:
        amount, request_id = quoted(prompt, max_output), self.request_id()
        reserved = sum(held for held, _ in self.pending.values())
        if self.used + reserved + amount > CAP:
            with pytest.raises(QuotaExceeded) as refused:
                self.run(
                    ledger.reserve(self.ctx, self.user_id, PRICED, prompt, max_output, request_id)
                )
            assert refused.value.details["tokens_left"] == max(0, CAP - self.used - reserved)
            return
        receipt = self.run(
            ledger.reserve(
                self.ctx, self.user_id, PRICED, prompt, max_output, request_id, hold_ttl_s=ttl
            )
        )
        assert receipt.tokens_held == amount
        self.pending[request_id] = (amount, self.clock.now() + timedelta(seconds=ttl))
        self.state[request_id] = "pending"

    @rule(data=st.data(), prompt=st.integers(0, 300), completion=st.integers(0, 400))
    def settle(self, data: st.DataObject, prompt: int, completion: int) -> None:
        if not self.state:
            return
        request_id = data.draw(st.sampled_from(sorted(self.state)))
        state = self.state[request_id]
        if request_id in self.settled:
            first = self.settled[request_id]
            if (prompt, completion) != first[:2]:
                with pytest.raises(Conflict):
                    self.run(ledger.settle(self.ctx, request_id, prompt, completion))
                prompt, completion = first[:2]
            replay = self.run(ledger.settle(self.ctx, request_id, prompt, completion))
            assert replay.tokens_charged == first[2]
            return
        if state == "released":
            with pytest.raises(HoldAlreadyResolved):
                self.run(ledger.settle(self.ctx, request_id, prompt, completion))
            return
        result = self.run(ledger.settle(self.ctx, request_id, prompt, completion))
        charge = quoted(prompt, completion)
        assert result.tokens_charged == charge
        assert result.late == (state == "expired")
        self.used += charge
        self.settled[request_id] = (prompt, completion, charge)
        if state == "pending":
            self.pending.pop(request_id)
            self.state[request_id] = "settled"

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if not self.state:
            return
        request_id = data.draw(st.sampled_from(sorted(self.state)))
        if self.state[request_id] != "pending":
            with pytest.raises(HoldAlreadyResolved) as refused:
                self.run(ledger.release(self.ctx, request_id))
            assert refused.value.code == f"hold_already_{self.state[request_id]}"
            return
        self.run(ledger.release(self.ctx, request_id))
        self.pending.pop(request_id)
        self.state[request_id] = "released"

    @rule(seconds=st.integers(0, 700))
    def time_passes_and_the_sweeper_runs(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)
        due = [rid for rid, (_, deadline) in self.pending.items() if deadline <= self.clock.now()]
        swept = self.run(ledger.sweep_expired(self.ctx))
        assert swept == len(due)
        for request_id in due:
            self.pending.pop(request_id)
            self.state[request_id] = "expired"

    def teardown(self) -> None:
        """Leave no pending hold behind: the next example's sweeps must count only its own."""
        for request_id in list(self.pending):
            self.run(ledger.release(self.ctx, request_id))

    @invariant()
    def the_ledger_agrees_with_the_model(self) -> None:
        reserved = sum(held for held, _ in self.pending.values())
        assert self.run(counter(self.ctx, self.user_id, PERIOD)) == (self.used, reserved)
        assert self.run(check.check(self.ctx)) == []


def test_any_sequence_of_ledger_operations_keeps_every_invariant(database_url: str) -> None:
    with asyncio.Runner() as runner:
        engine = create_engine(database_url)
        ctx = Context(uow=UnitOfWork(engine), clock=FixedClock())
        runner.run(enable_priced_model(ctx))
        LedgerModel.runner, LedgerModel.ctx = runner, ctx
        try:
            run_state_machine_as_test(
                LedgerModel,
                settings=settings(
                    max_examples=12,
                    stateful_step_count=25,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(engine.dispose())
