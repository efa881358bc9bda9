"""Scale-out: four `qm serve` processes (separate OS processes, as on separate hosts) share one
PostgreSQL database, and one member with a small cap fires far more calls than it allows at all
of them at once. The cap holds across processes: every call is a 200 or a 429
insufficient_quota, the total charged never exceeds the cap, and the counts add up
(Σ usage events = counters = roll-ups: `qm ledger check`).

docs/ledger.md allows an overrun of one request's estimate error above a cap; here the fake
upstream reports less usage than each hold (the worst case), so there is none and the total
must stay within the cap itself."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
from bench import qm_stack

from tests.reliability.stack import (
    chat_body,
    ledger_check,
    qm_serve,
    server_logs,
    settled_ledger_of,
)

PROCESSES = 4
REQUESTS = 240
IN_FLIGHT = 32
CAP = 1_000
CHARGE = 21  # the fake upstream reports 14 prompt + 7 completion tokens at rates of 1 and 1


async def _fire(urls: list[str], key: str) -> list[tuple[str, int, str | None]]:
    """REQUESTS chat calls spread round-robin over the processes, IN_FLIGHT at a time."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    targets = itertools.islice(itertools.cycle(urls), REQUESTS)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:

        async def one(url: str) -> tuple[str, int, str | None]:
            async with gate:
                reply = await http.post(f"{url}/v1/chat/completions", json=chat_body("hello"))
            code = None if reply.status_code == 200 else reply.json()["error"]["code"]
            return url, reply.status_code, code

        return await asyncio.gather(*(one(url) for url in targets))


async def test_processes_sharing_one_database_never_charge_past_the_cap(
    shared_database: qm_stack.Database, gateway_env: dict[str, str], workdir: Path
) -> None:
    spec = qm_stack.TeamSpec("Scale-out", inference_cap=CAP)
    team = await qm_stack.with_context(shared_database.url, qm_stack.provision_team, spec)
    env = gateway_env
    with ExitStack() as stack:
        servers = [stack.enter_context(qm_serve(env, workdir, f"qm-{n}")) for n in range(PROCESSES)]
        results = await _fire([server.url for server in servers], team.member_keys[0])
    outcomes = Counter((status, code) for _, status, code in results)
    allowed = {(200, None), (429, "insufficient_quota")}
    assert set(outcomes) <= allowed, f"{outcomes}\n{server_logs(workdir)}"
    served = Counter(url for url, status, _ in results if status == 200)
    assert len(served) == PROCESSES, f"every process charged some calls: {served}"
    ledger = await settled_ledger_of(shared_database, team.member_ids[0])
    assert ledger.used <= CAP
    assert ledger.used == CHARGE * outcomes[(200, None)] == sum(ledger.events.values())
    assert len(ledger.events) == outcomes[(200, None)]
    assert ledger.reserved == 0
    assert ledger.used > CAP // 2, "the cap was spent, not refused wholesale"
    assert ledger_check(env, workdir) == {"ok": True, "differences": []}
    print(f"scale-out: {dict(outcomes)}, charged {ledger.used} of {CAP}, per process {served}")
