"""Real processes for the reliability tests: the fault-injecting fake upstream, `qm serve` (one
or several, killable), and what a test reads back from the ledger to judge the outcome.

The stack itself (database, `qm init`, catalog models on the fake upstream, organizations with
API keys) is the benchmarks' own, `bench/qm_stack.py`, so the tests and the soak share it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from bench import qm_stack
from bench.processes import running

from tests.e2e.servers import free_port

BENCH = Path(__file__).resolve().parents[2] / "bench"
HOLD_TTL_S = 4
SWEEP_INTERVAL_S = 1
READ_TIMEOUT_S = 3.0
SLOW_GAP_S = 0.2


@contextmanager
def fault_upstream(log_dir: Path) -> Iterator[str]:
    """`bench/fault_upstream.py` on a free port; yields its base URL (…/v1)."""
    port = free_port()
    command = [sys.executable, str(BENCH / "fault_upstream.py"), "--port", str(port)]
    command += ["--slow-gap-s", str(SLOW_GAP_S), "--hang-s", "60"]
    url = f"http://127.0.0.1:{port}"
    with running("fault upstream", command, f"{url}/healthz", log_dir / "upstream.log"):
        yield f"{url}/v1"


def qm_environment(database: qm_stack.Database, upstream_url: str, workdir: Path) -> dict[str, str]:
    """The stack's environment with short hold deadlines and upstream timeouts, for tests."""
    env = qm_stack.environment(database, upstream_url, workdir, read_timeout_s=READ_TIMEOUT_S)
    return env | {"QM_HOLD_TTL_S": str(HOLD_TTL_S), "QM_SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S)}


@dataclass
class Server:
    """One `qm serve` process; `kill()` is kill -9."""

    process: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def qm_serve(env: dict[str, str], workdir: Path, name: str = "qm") -> Iterator[Server]:
    """`qm serve` (one process) on a free port until the block ends (or it is killed)."""
    port = free_port()
    command = qm_stack.serve_command(port, workers=1)
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"{name}-{port}.log"
    with running(name, command, f"{url}/healthz", log, env=env, cwd=workdir) as process:
        yield Server(process, url)


def server_logs(workdir: Path, lines: int = 15) -> str:
    """The last `lines` of each `qm serve` log in `workdir`, for a failed assertion to show why
    a server answered what it did: pytest removes the logs with its temporary directory."""
    tails = [
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        for log in sorted(workdir.glob("qm*.log"))
    ]
    return "\n".join(tails)


def ledger_check(env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """`qm ledger check --json` as an operator runs it."""
    return qm_stack.ledger_check(env, workdir, timeout_s=60)


@dataclass(frozen=True)
class Ledger:
    """One member's ledger as the database holds it."""

    holds: dict[str, str]
    """request id → state"""
    events: dict[str, int]
    """request id → tokens charged"""
    used: int
    reserved: int


async def ledger_of(database: qm_stack.Database, user_id: int) -> Ledger:
    connection = await asyncpg.connect(database.dsn)
    try:
        holds = await connection.fetch(
            "SELECT request_id, state FROM holds WHERE user_id = $1", user_id
        )
        events = await connection.fetch(
            "SELECT request_id, tokens FROM usage_events WHERE user_id = $1", user_id
        )
        counters = await connection.fetchrow(
            "SELECT coalesce(sum(used), 0) AS used, coalesce(sum(reserved), 0) AS reserved "
            "FROM usage_counters WHERE user_id = $1",
            user_id,
        )
    finally:
        await connection.close()
    assert counters is not None
    return Ledger(
        {row["request_id"]: row["state"] for row in holds},
        {row["request_id"]: int(row["tokens"]) for row in events},
        int(counters["used"]),
        int(counters["reserved"]),
    )


async def eventually(
    what: str, probe: Callable[[], Awaitable[bool]], timeout_s: float = 20.0
) -> float:
    """Wait (bounded) until `probe()` is true; returns the seconds it took."""
    start = time.monotonic()
    while not await probe():
        assert time.monotonic() - start < timeout_s, f"{what} did not happen within {timeout_s} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def settled_ledger_of(database: qm_stack.Database, user_id: int) -> Ledger:
    """The member's ledger once every finished call is booked: bookings land just after their
    answers have gone out (services/settlements.py), so a test that read at once could race."""

    async def booked() -> bool:
        return "pending" not in (await ledger_of(database, user_id)).holds.values()

    await eventually("every finished call booked", booked, timeout_s=5.0)
    return await ledger_of(database, user_id)


def chat_body(text: str, *, stream: bool = False, max_tokens: int = 16) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": qm_stack.MODEL,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body
