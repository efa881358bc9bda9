"""Soak: a few minutes of mixed traffic against a real stack, then the ledger check.

Starts its own stack on loopback (a throw-away PostgreSQL database on 127.0.0.1:5432, `qm init`,
the fake upstream of `fault_upstream.py` serving a chat and an embedding model, one org with
members and an MFA-verified admin, --processes separate `qm serve` processes on ports of their
own, as a deployment behind a load balancer runs them), then runs workers that mix streamed and
whole chat calls, dataset uploads, allocation edits by the admin through the API and CSV exports,
each call to the next server in turn, until --minutes have passed or --max-ops operations were
made. Separate processes rather than `--workers`, so that each one's memory is read from its own
pid. Every --sample-s seconds it reads each server's memory (`memory_series.py`).

It writes into --out: summary.json (errors by operation and kind, latency percentiles per
operation, per server the resident memory at the start, the peak and the end with a plateau
verdict, and `qm ledger check` at the end), memory.csv (the time series, for
`plot_soak.py`) and each server's log; it prints the summary too. Everything it started is
stopped and the database dropped.

Usage: python bench/soak.py --minutes 3        (make soak; MINUTES=60 make soak for the hour)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import memory_series
import qm_stack
from processes import free_port, running

HERE = Path(__file__).resolve().parent
WORDS = ("ledger", "token", "cap", "member", "admin", "model", "stream", "upload", "hold")
MIX = {"chat": 35, "chat_stream": 25, "ingest": 10, "admin_edit": 15, "export": 15}
CAP = 10**9
OUT = Path(tempfile.gettempdir()) / "qm-soak"


@dataclass
class Tally:
    latencies_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    memory: list[memory_series.Sample] = field(default_factory=list)

    @property
    def operations(self) -> int:
        return sum(len(values) for values in self.latencies_s.values()) + sum(self.errors.values())

    def percentiles(self) -> dict[str, dict[str, float]]:
        return {op: _percentiles(sorted(values)) for op, values in sorted(self.latencies_s.items())}


def _percentiles(ordered: list[float]) -> dict[str, float]:
    def ms(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "count": len(ordered),
        "p50_ms": ms(0.5),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
        "max_ms": ms(1.0),
    }


@dataclass
class Soak:
    clients: list[httpx.AsyncClient]
    team: qm_stack.Team
    datasets: list[int]
    tally: Tally
    versions: dict[int, int] = field(default_factory=dict)
    _turn: int = 0

    @property
    def http(self) -> httpx.AsyncClient:
        """The next server's client: calls go round the servers as a load balancer sends them."""
        self._turn += 1
        return self.clients[self._turn % len(self.clients)]

    def _member(self) -> tuple[int, dict[str, str]]:
        index = random.randrange(len(self.team.member_keys))
        return index, {"Authorization": f"Bearer {self.team.member_keys[index]}"}

    async def chat(self) -> httpx.Response:
        _, headers = self._member()
        body = {"model": qm_stack.MODEL, "messages": [{"role": "user", "content": "hi"}]}
        return await self.http.post(
            "/v1/chat/completions", json=body | {"max_tokens": 16}, headers=headers
        )

    async def chat_stream(self) -> httpx.Response:
        _, headers = self._member()
        body = {
            "model": qm_stack.MODEL,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        }
        async with self.http.stream(
            "POST", "/v1/chat/completions", json=body, headers=headers
        ) as reply:
            if reply.status_code != 200:
                await reply.aread()
                return reply
            async for line in reply.aiter_lines():
                if line.startswith('data: {"error"'):
                    return httpx.Response(599, json=json.loads(line[6:]))
        return reply

    async def ingest(self) -> httpx.Response:
        index, headers = self._member()
        text = " ".join(random.choices(WORDS, k=300)).encode()
        files = [("files", (f"soak-{random.getrandbits(64):x}.txt", text, "text/plain"))]
        return await self.http.post(
            f"/api/datasets/{self.datasets[index]}/documents", files=files, headers=headers
        )

    async def admin_edit(self) -> httpx.Response:
        index = random.randrange(len(self.team.member_ids))
        user_id = self.team.member_ids[index]
        url = f"/api/orgs/{self.team.org_id}/members/{user_id}/allocation"
        for _ in range(3):  # another worker may have saved first: reload the version and retry
            body = {
                "max_inference_tokens": CAP - random.randrange(1000),
                "max_training_tokens": CAP,
            }
            reply = await self.http.put(
                url, json=body | {"version": self.versions.get(user_id, 2)}, headers=self._admin()
            )
            if reply.status_code == 200:
                self.versions[user_id] = reply.json()["version"]
                return reply
            if reply.status_code != 409:
                return reply
            self.versions[user_id] = reply.json()["error"]["current"]["version"]
        return reply

    async def export(self) -> httpx.Response:
        url = f"/api/orgs/{self.team.org_id}/exports/users-tokens.csv"
        return await self.http.get(url, headers=self._admin())

    def _admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.team.admin_key}"}


async def worker(soak: Soak, deadline: float, budget: list[int]) -> None:
    operations: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
        name: getattr(soak, name) for name in MIX
    }
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        op = random.choices(list(MIX), weights=list(MIX.values()))[0]
        started = time.monotonic()
        try:
            reply = await operations[op]()
        except httpx.HTTPError as exc:
            soak.tally.errors[f"{op}: {type(exc).__name__}"] += 1
            continue
        if reply.status_code >= 300:
            try:
                code = reply.json().get("error", {}).get("code")
            except ValueError:
                code = None
            soak.tally.errors[f"{op}: {reply.status_code} {code}"] += 1
        else:
            soak.tally.latencies_s[op].append(time.monotonic() - started)


def record_memory(pids: list[int], tally: Tally, started: float) -> None:
    elapsed_s = time.monotonic() - started
    for process, pid in enumerate(pids):
        tally.memory.append(memory_series.read(process, pid, elapsed_s, tally.operations))


async def sample_memory(
    pids: list[int], tally: Tally, started: float, deadline: float, every_s: float
) -> None:
    """Samples until the deadline; the load's end stops it early (`run_load` samples once more)."""
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(every_s, left))
        record_memory(pids, tally, started)


async def create_datasets(http: httpx.AsyncClient, team: qm_stack.Team) -> list[int]:
    datasets = []
    for key in team.member_keys:
        body = {"name": "soak", "embedding_model": qm_stack.EMBED_MODEL}
        created = await http.post(
            "/api/datasets", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        datasets.append(created.raise_for_status().json()["id"])
    return datasets


async def run_load(
    urls: list[str], pids: list[int], team: qm_stack.Team, args: argparse.Namespace
) -> Tally:
    tally = Tally()
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=60))
            for url in urls
        ]
        soak = Soak(clients, team, await create_datasets(clients[0], team), tally)
        started = time.monotonic()
        deadline = started + 60 * args.minutes
        budget = [args.max_ops]
        record_memory(pids, tally, started)
        sampler = asyncio.create_task(sample_memory(pids, tally, started, deadline, args.sample_s))
        await asyncio.gather(*(worker(soak, deadline, budget) for _ in range(args.concurrency)))
        sampler.cancel()
        with suppress(asyncio.CancelledError):
            await sampler
        record_memory(pids, tally, started)
    return tally


def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    database = qm_stack.create_database(args.admin_dsn, f"qm_soak_{free_port()}")
    try:
        with ExitStack() as stack:
            port = free_port()
            command = [sys.executable, str(HERE / "fault_upstream.py"), "--port", str(port)]
            stack.enter_context(
                running(
                    "fake upstream",
                    command,
                    f"http://127.0.0.1:{port}/healthz",
                    workdir / "upstream.log",
                )
            )
            env = qm_stack.environment(database, f"http://127.0.0.1:{port}/v1", workdir)
            qm_stack.migrate(env, workdir)
            spec = qm_stack.TeamSpec(
                "Soak", members=args.members, inference_cap=CAP, training_cap=CAP, admin_mfa=True
            )
            team = asyncio.run(qm_stack.with_context(database.url, qm_stack.provision_team, spec))
            urls, pids = [], []
            for process in range(args.processes):
                qm_port = free_port()
                urls.append(f"http://127.0.0.1:{qm_port}")
                server = stack.enter_context(
                    running(
                        f"qm serve {process}",
                        qm_stack.serve_command(qm_port, 1),
                        f"{urls[-1]}/healthz",
                        workdir / f"qm-{process}.log",
                        env=env,
                        cwd=workdir,
                    )
                )
                pids.append(server.pid)
            started = time.monotonic()
            tally = asyncio.run(run_load(urls, pids, team, args))
            seconds = time.monotonic() - started
        memory_series.write_csv(tally.memory, args.out / "memory.csv")
        return summary(tally, seconds, qm_stack.ledger_check(env, workdir), args)
    finally:
        qm_stack.drop_database(database)


def summary(
    tally: Tally, seconds: float, check: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    done = sum(len(values) for values in tally.latencies_s.values())
    return {
        "minutes": args.minutes,
        "processes": args.processes,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 1),
        "operations_ok": done,
        "operations_failed": sum(tally.errors.values()),
        "ops_per_s": round(done / seconds, 1),
        "errors": dict(tally.errors),
        "latency": tally.percentiles(),
        "memory": memory_series.summaries(tally.memory),
        "memory_series": str(args.out / "memory.csv"),
        "ledger_check": check,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument(
        "--max-ops",
        type=int,
        default=10**9,
        help="stop after this many (by default the time stops it)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--processes", type=int, default=4, help="separate qm serve processes")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=OUT, help="directory for the results")
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    assert 0 < args.minutes <= 120, "--minutes must be within 0..120"
    assert "127.0.0.1" in args.admin_dsn or "localhost" in args.admin_dsn, "loopback only"
    assert args.processes > 0, "--processes must be at least 1"
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qm-soak-") as workdir:
        try:
            result = soak(args, Path(workdir))
        finally:  # the servers' logs outlive the run, for the errors they counted
            for log in Path(workdir).glob("qm-*.log"):
                shutil.copyfile(log, args.out / log.name)
    text = json.dumps(result, indent=2)
    (args.out / "summary.json").write_text(text + "\n")
    print(text)
    sys.exit(0 if result["ledger_check"].get("ok") else 1)


if __name__ == "__main__":
    main()
