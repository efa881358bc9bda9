"""Soak: a few minutes of mixed traffic against a real stack, then the ledger check.

Starts its own stack on loopback (a throw-away PostgreSQL database on 127.0.0.1:5432, `qm init`,
the fake upstream of `fault_upstream.py` serving a chat and an embedding model, one org with
members and an MFA-verified admin, one `qm serve`), then runs workers that mix streamed and
whole chat calls, dataset uploads, allocation edits by the admin through the API and CSV exports
until --minutes have passed or --max-ops operations were made. It prints one JSON object: errors
by operation and kind, latency percentiles per operation, the server's resident memory at the
start, the peak and the end (from /proc), and `qm ledger check` at the end. Everything it
started is stopped and the database dropped.

Usage: python bench/soak.py --minutes 3        (make soak)
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import qm_stack
from processes import free_port, running

HERE = Path(__file__).resolve().parent
WORDS = ("ledger", "token", "cap", "member", "admin", "model", "stream", "upload", "hold")
MIX = {"chat": 35, "chat_stream": 25, "ingest": 10, "admin_edit": 15, "export": 15}
CAP = 10**9
SERVER_LOG = Path(tempfile.gettempdir()) / "qm-soak-server.log"


@dataclass
class Tally:
    latencies_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    rss_kib: list[int] = field(default_factory=list)

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


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Soak:
    http: httpx.AsyncClient
    team: qm_stack.Team
    datasets: list[int]
    tally: Tally
    versions: dict[int, int] = field(default_factory=dict)

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


async def sample_rss(pid: int, tally: Tally, deadline: float) -> None:
    while time.monotonic() < deadline:
        tally.rss_kib.append(rss_kib(pid))
        await asyncio.sleep(5)


async def run_load(url: str, pid: int, team: qm_stack.Team, args: argparse.Namespace) -> Tally:
    tally = Tally()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        datasets = []
        for key in team.member_keys:
            body = {"name": "soak", "embedding_model": qm_stack.EMBED_MODEL}
            created = await http.post(
                "/api/datasets", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            datasets.append(created.raise_for_status().json()["id"])
        soak = Soak(http, team, datasets, tally)
        deadline = time.monotonic() + 60 * args.minutes
        budget = [args.max_ops]
        tally.rss_kib.append(rss_kib(pid))
        await asyncio.gather(
            sample_rss(pid, tally, deadline),
            *(worker(soak, deadline, budget) for _ in range(args.concurrency)),
        )
        tally.rss_kib.append(rss_kib(pid))
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
            qm_port = free_port()
            server = stack.enter_context(
                running(
                    "qm serve",
                    qm_stack.serve_command(qm_port, 1),
                    f"http://127.0.0.1:{qm_port}/healthz",
                    workdir / "qm.log",
                    env=env,
                    cwd=workdir,
                )
            )
            started = time.monotonic()
            tally = asyncio.run(run_load(f"http://127.0.0.1:{qm_port}", server.pid, team, args))
            seconds = time.monotonic() - started
        return summary(tally, seconds, qm_stack.ledger_check(env, workdir), args)
    finally:
        qm_stack.drop_database(database)


def summary(
    tally: Tally, seconds: float, check: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    done = sum(len(values) for values in tally.latencies_s.values())
    return {
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 1),
        "operations_ok": done,
        "operations_failed": sum(tally.errors.values()),
        "ops_per_s": round(done / seconds, 1),
        "errors": dict(tally.errors),
        "latency": tally.percentiles(),
        "server_rss_mib": {
            "start": round(tally.rss_kib[0] / 1024, 1),
            "peak": round(max(tally.rss_kib) / 1024, 1),
            "end": round(tally.rss_kib[-1] / 1024, 1),
        },
        "ledger_check": check,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--max-ops", type=int, default=200_000, help="stop after this many")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    assert 0 < args.minutes <= 120, "--minutes must be within 0..120"
    assert "127.0.0.1" in args.admin_dsn or "localhost" in args.admin_dsn, "loopback only"
    with tempfile.TemporaryDirectory(prefix="qm-soak-") as workdir:
        try:
            result = soak(args, Path(workdir))
        finally:  # the server's log outlives the run, for the errors it counted
            shutil.copyfile(Path(workdir) / "qm.log", SERVER_LOG)
    result["server_log"] = str(SERVER_LOG)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["ledger_check"].get("ok") else 1)


if __name__ == "__main__":
    main()
