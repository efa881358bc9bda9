"""A hot standby takes over: two `qm serve` processes whose database URL lists a primary and its
standby (`target_session_attrs=read-write`) are under load when the primary stops, as in a crash
(`pg_ctl stop -m immediate`) or a planned switch (`-m fast`, which first sends the standby all it
wrote), and the standby is promoted. Calls in flight and calls made while there is no primary
fail closed with 503 database_unavailable (never a 500); both processes serve again by
themselves, on the new primary, within seconds; once the holds of cut calls expire nothing stays
held, nothing is charged twice, and `qm ledger check` is clean. With a synchronous standby every
200 answer has exactly one usage event on the new primary and no other call has one; with an
asynchronous one, the answers that went uncharged are counted. An asynchronous standby behind a
slow link (tests/e2e/wan_relay.py) loses the charges of its lag, and only those: the measure of
what asynchronous replication costs (docs/deploy.md).

Both clusters are this test's own (tests/e2e/postgres_cluster.py): the shared server is never
stopped. The machinery is tests/reliability/failover.py. The measured seconds and losses are
printed (`pytest -s`) and quoted in docs/deploy.md."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bench import qm_stack

from tests.e2e.postgres_cluster import PostgresCluster, Replication
from tests.reliability.failover import (  # noqa: F401 - the fixtures
    STEADY_S,
    database,
    failover_under_load,
    judge_calls,
    primary_and_standby,
)


@pytest.mark.parametrize(
    ("mode", "primary_and_standby"),
    [("immediate", Replication()), ("fast", Replication()), ("immediate", Replication(False))],
    ids=["crash-synchronous", "switch-synchronous", "crash-asynchronous"],
    indirect=["primary_and_standby"],
)
async def test_a_promoted_standby_takes_over_failing_closed_and_charging_nothing_twice(
    mode: str,
    primary_and_standby: tuple[PostgresCluster, PostgresCluster],  # noqa: F811 - imported above
    database: qm_stack.Database,  # noqa: F811 - imported above
    upstream_url: str,
    workdir: Path,
) -> None:
    outcome = await failover_under_load(primary_and_standby, database, upstream_url, workdir, mode)
    judge_calls(outcome.load, outcome.failover, mode)
    answered = len(outcome.load.answers())
    print(f"{mode}: {len(outcome.uncharged)} of {answered} answers uncharged")


LAGS_MS = [int(ms) for ms in os.environ.get("QM_STANDBY_LAGS_MS", "250").split(",")]
"""One-way delays of the asynchronous standby's link (tests/e2e/wan_relay.py); docs/deploy.md
quotes `QM_STANDBY_LAGS_MS=0,20,100,250 pytest -s -k lagging`."""
SURE_LOSS_MS = 100
"""From this delay on, a crash under load must lose charges, or the relay did not delay."""
SLACK_S = 0.3
"""Around the window of loss: the time `pg_ctl stop` takes, and a booking's own commit."""


@pytest.mark.parametrize(
    "primary_and_standby",
    [Replication(synchronous=False, one_way_delay_s=ms / 1000) for ms in LAGS_MS],
    ids=[f"{ms}ms" for ms in LAGS_MS],
    indirect=True,
)
async def test_a_crash_with_a_lagging_asynchronous_standby_loses_only_the_lag_s_charges(
    primary_and_standby: tuple[PostgresCluster, PostgresCluster],  # noqa: F811 - imported above
    database: qm_stack.Database,  # noqa: F811 - imported above
    upstream_url: str,
    workdir: Path,
    request: pytest.FixtureRequest,
) -> None:
    """What reached the standby `delay` after the primary wrote it: answers whose hold or
    booking was committed in the last `delay` before the crash go uncharged, no others; nothing
    is charged twice or left held (`failover_under_load`)."""
    delay_s = request.node.callspec.params["primary_and_standby"].one_way_delay_s
    outcome = await failover_under_load(
        primary_and_standby, database, upstream_url, workdir, "immediate"
    )
    load, failover = outcome.load, outcome.failover
    judge_calls(load, failover, "immediate")
    window = {
        call.request_id
        for call in load.calls
        if call.request_id
        and failover.stopping - delay_s - SLACK_S < call.ended
        and call.started < failover.down + SLACK_S
    }
    steady = load.between(failover.stopping - STEADY_S, failover.stopping)
    rate = sum(call.status == 200 for call in steady) / STEADY_S
    print(
        f"lag {delay_s * 1000:.0f} ms one way: {rate:.0f} answers/s, {failover.lag}; "
        f"{len(outcome.uncharged)} of {len(load.answers())} answers uncharged, "
        f"{len(window)} answered in the window of loss"
    )
    assert outcome.uncharged <= window, sorted(outcome.uncharged - window)
    if delay_s * 1000 >= SURE_LOSS_MS:
        assert outcome.uncharged, "nothing lost: did the standby's link delay anything?"
