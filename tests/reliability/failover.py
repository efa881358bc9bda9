"""What the hot-standby tests share: a primary and its standby behind two `qm serve` gateways
under load, the failover itself (stop the primary, wait for refusals, promote), and the ledger
on the new primary judged against the gateways' record of their answers."""

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
STEADY_S = 1.0
"""Load before the stop: the standby's lag and the rate of answers are those of a steady flow."""
FAIL_CLOSED = {(200, None), (503, "database_unavailable")}


@dataclass(frozen=True)
class Lag:
    """How far the standby was behind: WAL bytes the primary wrote that the standby had not yet
    flushed, and `pg_stat_replication.flush_lag` (a round trip: the standby's reply comes back
    over the same link), in seconds (None: no recent change to time)."""

    unflushed_bytes: int
    flush_lag_s: float | None


async def lag_of(primary: PostgresCluster) -> Lag:
    connection = await asyncpg.connect(primary.dsn)
    try:
        row = await connection.fetchrow(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) AS unflushed, "
            "extract(epoch FROM flush_lag) AS flush_lag "
            "FROM pg_stat_replication WHERE application_name = $1",
            STANDBY_NAME,
        )
    finally:
        await connection.close()
    assert row is not None, "the standby is not streaming"
    flush_lag = row["flush_lag"]
    return Lag(int(row["unflushed"]), None if flush_lag is None else float(flush_lag))


@dataclass(frozen=True)
class Failover:
    """Monotonic times of the switch, and each gateway's seconds from `pg_ctl promote` to a 200.
    `promoting` is when promotion was asked for: `pg_ctl promote -w` polls, so the standby may
    take writes a little before it returns."""

    stopping: float
    down: float
    promoting: float
    recovered_s: dict[str, float]
    lag: Lag
    """The standby's lag as the primary saw it just before the stop."""

    @property
    def settled(self) -> float:
        """A moment after both gateways served again: every call from then on must succeed."""
        return self.promoting + max(self.recovered_s.values()) + SETTLE_S


def listing_both(primary: PostgresCluster, standby: PostgresCluster) -> str:
    """The URL an operator writes: libpq's list of hosts, the writable one wanted."""
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"


def synchronous(primary: PostgresCluster) -> bool:
    return "synchronous_standby_names" in primary.settings


async def standby_streaming(primary: PostgresCluster) -> bool:
    """Whether the standby streams, and as `synchronous_standby_names` makes it."""
    connection = await asyncpg.connect(primary.dsn)
    try:
        state = await connection.fetchval(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
        )
    finally:
        await connection.close()
    return bool(state == ("sync" if synchronous(primary) else "async"))


@asynccontextmanager
async def under_load(urls: list[str], key: str) -> AsyncIterator[Load]:
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


async def every_gateway(load: Load, urls: list[str], status: int, after: float) -> None:
    """Until each gateway has answered a call started after `after` with `status`."""
    for url in urls:

        async def answered(gateway: str = url) -> bool:
            return load.answered(status, after=after, gateway=gateway)

        await eventually(f"{url} answering {status}", answered, timeout_s=30)


def first_answer_s(load: Load, url: str, after: float) -> float:
    """Seconds from `after` to the end of `url`'s first 200 to a call started after it."""
    ends = [
        c.ended for c in load.calls if c.gateway == url and c.status == 200 and c.started > after
    ]
    return min(ends) - after


async def fail_over(
    clusters: tuple[PostgresCluster, PostgresCluster], mode: str, load: Load, urls: list[str]
) -> Failover:
    """Stop the primary under load; once every gateway has refused calls, and says at /healthz
    that it has no database, promote the standby."""
    primary, standby = clusters
    await every_gateway(load, urls, 200, after=0.0)
    await asyncio.sleep(STEADY_S)
    lag = await lag_of(primary)
    stopping = time.monotonic()
    await asyncio.to_thread(primary.stop, mode)
    down = time.monotonic()
    for _ in range(REFUSALS_BEFORE_PROMOTION):
        await every_gateway(load, urls, 503, after=time.monotonic())
    await healthz(urls, 503)
    promoting = time.monotonic()
    await asyncio.to_thread(standby.promote)
    await every_gateway(load, urls, 200, after=promoting)
    recovered_s = {url: first_answer_s(load, url, promoting) for url in urls}
    return Failover(stopping, down, promoting, recovered_s, lag)


async def healthz(urls: list[str], status: int) -> None:
    """Each gateway's /healthz answers `status` (503: with no database to write to)."""
    async with httpx.AsyncClient(timeout=10) as http:
        for url in urls:
            health = await http.get(f"{url}/healthz")
            assert health.status_code == status, health.text
            if status == 503:
                assert health.json()["error"]["code"] == "database_unavailable"


async def answers_on_the_new_primary(load: Load, urls: list[str], after: float) -> None:
    async def enough() -> bool:
        served = Counter(c.gateway for c in load.calls if c.status == 200 and c.started > after)
        return all(served[url] >= ANSWERS_AFTER_RECOVERY for url in urls)

    await eventually("traffic on the new primary", enough, timeout_s=30)


def calls_of(load: Load) -> Counter[tuple[int, str | None]]:
    return Counter((call.status, call.code) for call in load.calls)


def in_flight(calls: list[Call], moment: float) -> Counter[tuple[int, str | None]]:
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


async def judge_ledger(
    new_primary: qm_stack.Database, member: int, load: Load, synchronous: bool
) -> set[str]:
    """Every 200 answer has its usage event on the new primary and no other call has one, once
    bookings in flight have landed and the holds of cut calls expired. An asynchronous standby
    may lack the last holds and bookings the primary acknowledged: those answers go uncharged
    (returned), but nothing is charged twice (a usage event's request id is unique, and no call
    that was not answered 200 has one) and the counters still add up."""
    answered = load.answers()

    async def resolved() -> bool:
        ledger = await ledger_of(new_primary, member)
        booked = set(ledger.events) == answered or not synchronous
        return booked and "pending" not in ledger.holds.values()

    with suppress(AssertionError):  # the assertions below say what differs
        await eventually("bookings landed, cut calls' holds expired", resolved, HOLD_TTL_S + 15)
    ledger = await ledger_of(new_primary, member)
    assert "pending" not in ledger.holds.values(), ledger.holds
    unanswered = {rid: ledger.holds.get(rid) for rid in set(ledger.events) - answered}
    assert not unanswered, f"charged, but not answered 200: {unanswered}, {calls_of(load)}"
    unbooked = {rid: ledger.holds.get(rid) for rid in answered - set(ledger.events)}
    assert not (synchronous and unbooked), f"answered 200, not charged (hold states): {unbooked}"
    assert ledger.reserved == 0
    assert ledger.used == sum(ledger.events.values())
    return {str(rid) for rid in unbooked}


@dataclass(frozen=True)
class Outcome:
    """What a failover under load did: the calls, the switch, and the answers left uncharged."""

    load: Load
    failover: Failover
    uncharged: set[str]


async def failover_under_load(
    clusters: tuple[PostgresCluster, PostgresCluster],
    database: qm_stack.Database,
    upstream_url: str,
    workdir: Path,
    mode: str,
) -> Outcome:
    """Two gateways under load while the primary stops (`mode`) and the standby is promoted;
    the ledger on the new primary judged (`judge_ledger`) and `qm ledger check` clean."""
    primary, standby = clusters
    spec = qm_stack.TeamSpec("Failover", inference_cap=10_000_000)
    team = await qm_stack.with_context(database.url, qm_stack.provision_team, spec)
    env = qm_environment(database, upstream_url, workdir)
    env["QM_DATABASE_URL"] = listing_both(primary, standby)
    await eventually("the standby streaming", lambda: standby_streaming(primary))
    with ExitStack() as stack:
        servers = [stack.enter_context(qm_serve(env, workdir, f"qm-{n}")) for n in range(GATEWAYS)]
        urls = [server.url for server in servers]
        async with under_load(urls, team.member_keys[0]) as load:
            failover = await fail_over(clusters, mode, load, urls)
            await answers_on_the_new_primary(load, urls, failover.settled)
        await healthz(urls, 200)
        # Inside the block: only a running gateway's sweeper expires the holds of cut calls.
        new_primary = qm_stack.Database(standby.dsn, DATABASE)
        member = team.member_ids[0]
        uncharged = await judge_ledger(new_primary, member, load, synchronous(primary))
        assert all(server.process.poll() is None for server in servers), "no restart"
    assert ledger_check(env, workdir) == {"ok": True, "differences": []}
    return Outcome(load, failover, uncharged)


def judge_calls(load: Load, failover: Failover, mode: str) -> None:
    """Calls fail closed (200 or 503, never a 500), none succeeds without a primary, all do once
    both gateways serve again; the seconds are printed."""
    outcomes = Counter((call.status, call.code) for call in load.calls)
    assert set(outcomes) <= FAIL_CLOSED, outcomes
    without_primary = load.between(failover.down, failover.promoting)
    assert len(without_primary) >= GATEWAYS
    assert {call.status for call in without_primary} == {503}
    assert {call.status for call in load.calls if call.started > failover.settled} == {200}
    cut = in_flight(load.calls, failover.stopping)
    print(
        f"failover ({mode}): {dict(outcomes)}; in flight as the stop began {dict(cut)}; "
        f"{failover.promoting - failover.down:.2f} s without a primary; serving again "
        f"{', '.join(f'{s:.2f}' for s in failover.recovered_s.values())} s after promotion"
    )
