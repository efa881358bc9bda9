"""A hot standby takes over: two `qm serve` processes whose database URL lists a primary and its
standby (`target_session_attrs=read-write`) are under load when the primary stops, as in a crash
(`pg_ctl stop -m immediate`) or a planned switch (`-m fast`, which first sends the standby all it
wrote), and the standby is promoted. Calls in flight and calls made while there is no primary
fail closed with 503 database_unavailable (never a 500); both processes serve again by
themselves, on the new primary, within seconds; once the holds of cut calls expire nothing stays
held, nothing is charged twice, and `qm ledger check` is clean. With a synchronous standby every
200 answer has exactly one usage event on the new primary and no other call has one; with an
asynchronous one, the answers that went uncharged are counted.

Both clusters are this test's own (tests/e2e/postgres_cluster.py): the shared server is never
stopped. The measured seconds are printed (`pytest -s`) and quoted in docs/deploy.md."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from bench import qm_stack

from tests.e2e.postgres_cluster import (  # noqa: F401 - the fixture
    STANDBY_NAME,
    PostgresCluster,
    primary_and_standby,
)
from tests.reliability.load import Call, Load
from tests.reliability.stack import (
    HOLD_TTL_S,
    eventually,
    ledger_check,
    ledger_of,
    qm_environment,
    qm_serve,
)

GATEWAYS = 2
CLIENTS_PER_GATEWAY = 3
ANSWERS_AFTER_RECOVERY = 20
"""Per gateway, before the load stops: the new primary has carried real traffic."""
DATABASE = "qm_failover"
REFUSALS_BEFORE_PROMOTION = 3
"""Calls each gateway refuses, one after another, before the standby is promoted."""
SETTLE_S = 0.5
FAIL_CLOSED = {(200, None), (503, "database_unavailable")}


@dataclass(frozen=True)
class Failover:
    """Monotonic times of the switch, and each gateway's seconds from `pg_ctl promote` to a 200.
    `promoting` is when promotion was asked for: `pg_ctl promote -w` polls, so the standby may
    take writes a little before it returns."""

    stopping: float
    down: float
    promoting: float
    recovered_s: dict[str, float]

    @property
    def settled(self) -> float:
        """A moment after both gateways served again: every call from then on must succeed."""
        return self.promoting + max(self.recovered_s.values()) + SETTLE_S


def _listing_both(primary: PostgresCluster, standby: PostgresCluster) -> str:
    """The URL an operator writes: libpq's list of hosts, the writable one wanted."""
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"


def _synchronous(primary: PostgresCluster) -> bool:
    return "synchronous_standby_names" in primary.settings


async def _standby_streaming(primary: PostgresCluster) -> bool:
    """Whether the standby streams, and as `synchronous_standby_names` makes it."""
    connection = await asyncpg.connect(primary.dsn)
    try:
        state = await connection.fetchval(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
        )
    finally:
        await connection.close()
    return bool(state == ("sync" if _synchronous(primary) else "async"))


@asynccontextmanager
async def _under_load(urls: list[str], key: str) -> AsyncIterator[Load]:
    """CLIENTS_PER_GATEWAY clients calling each gateway until the block ends."""
    load = Load()
    headers = {"Authorization": f"Bearer {key}"}
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, headers=headers))
            for url in urls
        ]
        tasks = [
            asyncio.create_task(load.client(http))
            for http in clients
            for _ in range(CLIENTS_PER_GATEWAY)
        ]
        try:
            yield load
        finally:
            load.stop.set()
            await asyncio.gather(*tasks)


async def _every_gateway(load: Load, urls: list[str], status: int, after: float) -> None:
    """Until each gateway has answered a call started after `after` with `status`."""
    for url in urls:

        async def answered(gateway: str = url) -> bool:
            return load.answered(status, after=after, gateway=gateway)

        await eventually(f"{url} answering {status}", answered, timeout_s=30)


def _first_answer_s(load: Load, url: str, after: float) -> float:
    """Seconds from `after` to the end of `url`'s first 200 to a call started after it."""
    ends = [
        c.ended for c in load.calls if c.gateway == url and c.status == 200 and c.started > after
    ]
    return min(ends) - after


async def _fail_over(
    clusters: tuple[PostgresCluster, PostgresCluster], mode: str, load: Load, urls: list[str]
) -> Failover:
    """Stop the primary under load; once every gateway has refused calls, and says at /healthz
    that it has no database, promote the standby."""
    primary, standby = clusters
    await _every_gateway(load, urls, 200, after=0.0)
    stopping = time.monotonic()
    await asyncio.to_thread(primary.stop, mode)
    down = time.monotonic()
    for _ in range(REFUSALS_BEFORE_PROMOTION):
        await _every_gateway(load, urls, 503, after=time.monotonic())
    await _healthz(urls, 503)
    promoting = time.monotonic()
    await asyncio.to_thread(standby.promote)
    await _every_gateway(load, urls, 200, after=promoting)
    recovered_s = {url: _first_answer_s(load, url, promoting) for url in urls}
    return Failover(stopping, down, promoting, recovered_s)


async def _healthz(urls: list[str], status: int) -> None:
    """Each gateway's /healthz answers `status` (503: with no database to write to)."""
    async with httpx.AsyncClient(timeout=10) as http:
        for url in urls:
            health = await http.get(f"{url}/healthz")
            assert health.status_code == status, health.text
            if status == 503:
                assert health.json()["error"]["code"] == "database_unavailable"


async def _answers_on_the_new_primary(load: Load, urls: list[str], after: float) -> None:
    async def enough() -> bool:
        served = Counter(c.gateway for c in load.calls if c.status == 200 and c.started > after)
        return all(served[url] >= ANSWERS_AFTER_RECOVERY for url in urls)

    await eventually("traffic on the new primary", enough, timeout_s=30)


def _calls_of(load: Load) -> Counter[tuple[int, str | None]]:
    return Counter((call.status, call.code) for call in load.calls)


def _in_flight(calls: list[Call], moment: float) -> Counter[tuple[int, str | None]]:
    return Counter((c.status, c.code) for c in calls if c.started < moment < c.ended)


@pytest.fixture
def database(
    primary_and_standby: tuple[PostgresCluster, PostgresCluster],  # noqa: F811 - imported above
    upstream_url: str,
    workdir: Path,
) -> qm_stack.Database:
    """A database on the primary, migrated by `qm init` there (gone with the clusters)."""
    database = qm_stack.create_database(primary_and_standby[0].dsn, DATABASE)
    qm_stack.migrate(qm_environment(database, upstream_url, workdir), workdir)
    return database


@pytest.mark.parametrize(
    ("mode", "primary_and_standby"),
    [("immediate", True), ("fast", True), ("immediate", False)],
    ids=["crash-synchronous", "switch-synchronous", "crash-asynchronous"],
    indirect=["primary_and_standby"],
)
async def test_a_promoted_standby_takes_over_failing_closed_and_charging_nothing_twice(
    mode: str,
    primary_and_standby: tuple[PostgresCluster, PostgresCluster],  # noqa: F811 - imported above
    database: qm_stack.Database,
    upstream_url: str,
    workdir: Path,
) -> None:
    primary, standby = primary_and_standby
    spec = qm_stack.TeamSpec("Failover", inference_cap=10_000_000)
    team = await qm_stack.with_context(database.url, qm_stack.provision_team, spec)
    env = qm_environment(database, upstream_url, workdir)
    env["QM_DATABASE_URL"] = _listing_both(primary, standby)
    await eventually("the standby streaming", lambda: _standby_streaming(primary))
    with ExitStack() as stack:
        servers = [stack.enter_context(qm_serve(env, workdir, f"qm-{n}")) for n in range(GATEWAYS)]
        urls = [server.url for server in servers]
        async with _under_load(urls, team.member_keys[0]) as load:
            failover = await _fail_over(primary_and_standby, mode, load, urls)
            await _answers_on_the_new_primary(load, urls, failover.settled)
        await _healthz(urls, 200)
        _judge(load, failover, mode)
        # Inside the block: only a running gateway's sweeper expires the holds of cut calls.
        new_primary = qm_stack.Database(standby.dsn, DATABASE)
        await _judge_ledger(new_primary, team.member_ids[0], load, _synchronous(primary))
        assert all(server.process.poll() is None for server in servers), "no restart"
    assert ledger_check(env, workdir) == {"ok": True, "differences": []}


def _judge(load: Load, failover: Failover, mode: str) -> None:
    outcomes = Counter((call.status, call.code) for call in load.calls)
    assert set(outcomes) <= FAIL_CLOSED, outcomes
    without_primary = load.between(failover.down, failover.promoting)
    assert len(without_primary) >= GATEWAYS
    assert {call.status for call in without_primary} == {503}
    assert {call.status for call in load.calls if call.started > failover.settled} == {200}
    in_flight = _in_flight(load.calls, failover.stopping)
    print(
        f"failover ({mode}): {dict(outcomes)}; in flight as the stop began {dict(in_flight)}; "
        f"{failover.promoting - failover.down:.2f} s without a primary; serving again "
        f"{', '.join(f'{s:.2f}' for s in failover.recovered_s.values())} s after promotion"
    )


async def _judge_ledger(
    new_primary: qm_stack.Database, member: int, load: Load, synchronous: bool
) -> None:
    """Every 200 answer has its usage event on the new primary and no other call has one, once
    bookings in flight have landed and the holds of cut calls expired. An asynchronous standby
    may lack the last holds and bookings the primary acknowledged: those answers go uncharged
    (counted and printed), but nothing is charged twice and the counters still add up."""
    answered = {call.request_id for call in load.calls if call.status == 200}

    async def resolved() -> bool:
        ledger = await ledger_of(new_primary, member)
        booked = set(ledger.events) == answered or not synchronous
        return booked and "pending" not in ledger.holds.values()

    with suppress(AssertionError):  # the assertions below say what differs
        await eventually("bookings landed, cut calls' holds expired", resolved, HOLD_TTL_S + 15)
    ledger = await ledger_of(new_primary, member)
    assert "pending" not in ledger.holds.values(), ledger.holds
    unanswered = {rid: ledger.holds.get(rid) for rid in set(ledger.events) - answered}
    assert not unanswered, f"charged, but not answered 200: {unanswered}, {_calls_of(load)}"
    if synchronous:
        unbooked = {rid: ledger.holds.get(rid) for rid in answered - set(ledger.events)}
        assert not unbooked, f"answered 200, but not charged (hold states): {unbooked}"
    assert ledger.reserved == 0
    assert ledger.used == sum(ledger.events.values())
    replication = "synchronous" if synchronous else "asynchronous"
    print(f"{replication}: {len(answered - set(ledger.events))} of {len(answered)} answers lost")
