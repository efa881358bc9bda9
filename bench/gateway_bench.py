"""Gateway overhead: chat latency and requests/s straight to a fast fake upstream, through
Quartermaster (ledger on PostgreSQL), and through LiteLLM's proxy, side by side.

Usage: .venv/bin/python bench/gateway_bench.py [--rate 50] [--paced-requests 500]
       [--requests 2000] [--concurrency 32] [--time-cap 30] [--workers 1] [--stream]
       [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--no-litellm]
       [--no-install-litellm] [--profile qm.prof]

Everything runs on loopback: the fake upstream, `qm serve` on a throw-away database
(qm_bench_<pid>, dropped at the end), and LiteLLM from its own venv (bench/.litellm-venv,
installed from PyPI on first use). Each target is warmed up, then measured at a paced load
(`--rate` requests/s, for latency) and at `--concurrency` requests in flight (for requests/s).
Prints one JSON line per measurement and per target's overhead (added latency = its p50/p99 at
the paced load minus the direct one), then a table on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import shlex
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litellm_proxy
import load
import qm_stack
from processes import StartFailed, cpu_by_pid, cpu_used, free_port, running, tree

from quartermaster import __version__

HERE = Path(__file__).resolve().parent
FAKE_UPSTREAM = HERE / "fake_upstream.py"
PROFILED_SERVE = HERE / "profiled_serve.py"
Pids = Callable[[], set[int]]
Row = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    rate: float
    paced_requests: int
    requests: int
    concurrency: int
    time_cap_s: float
    warmup: int = 100


def emit(row: Row) -> Row:
    print(json.dumps(row), flush=True)
    return row


def _phase(target: load.Target, plan: Plan, scenario: str) -> load.Outcome:
    if scenario == "paced":
        return asyncio.run(load.paced(target, plan.rate, plan.paced_requests, plan.time_cap_s))
    return asyncio.run(load.saturate(target, plan.concurrency, plan.requests, plan.time_cap_s))


def measure(target: load.Target, plan: Plan, watched: dict[str, Pids]) -> list[Row]:
    """Warm up, then the paced and the saturating phase, with the CPU each watched process
    group spent per completed request."""
    asyncio.run(load.saturate(target, 4, plan.warmup, plan.time_cap_s))
    rows = []
    for scenario in ("paced", "max"):
        before = {name: cpu_by_pid(pids()) for name, pids in watched.items()}
        outcome = _phase(target, plan, scenario)
        load_shape = (
            {"rate": plan.rate} if scenario == "paced" else {"concurrency": plan.concurrency}
        )
        row = {"target": target.name, "scenario": scenario, **load_shape, **outcome.summary()}
        for name, pids in watched.items():
            used = cpu_used(before[name], cpu_by_pid(pids() | set(before[name])))
            row[f"{name}_cpu_ms_per_request"] = round(1000 * used / max(1, row["requests"]), 2)
        rows.append(emit(row))
    return rows


def bench_quartermaster(
    args: argparse.Namespace, plan: Plan, workdir: Path, upstream_url: str, upstream: Pids
) -> list[Row]:
    database = qm_stack.create_database(args.postgres)
    try:
        env = qm_stack.environment(database, upstream_url, workdir)
        key = qm_stack.initialize(env, workdir)
        port = free_port()
        command = qm_stack.serve_command(port, args.workers)
        if args.profile:
            command = [sys.executable, str(PROFILED_SERVE), "--port", str(port)]
            command += ["--out", str(args.profile.resolve())]
        ready = f"http://127.0.0.1:{port}/healthz"
        with running("qm serve", command, ready, workdir / "qm.log", env, cwd=workdir) as server:
            base_url = f"http://127.0.0.1:{port}/v1"
            target = load.Target("quartermaster", base_url, key, qm_stack.MODEL, args.stream)
            watched = {
                "server": lambda: tree(server.pid),
                "postgres": lambda: qm_stack.backend_pids(database),
                "upstream": upstream,
            }
            rows = measure(target, plan, watched)
    finally:
        qm_stack.drop_database(database)
    if args.profile:
        print_profile(args.profile)
    return rows


def bench_litellm(
    args: argparse.Namespace, plan: Plan, workdir: Path, upstream_url: str, upstream: Pids
) -> list[Row]:
    if args.no_litellm:
        return []
    try:
        executable = litellm_proxy.ensure_installed(not args.no_install_litellm)
        config = litellm_proxy.write_config(workdir, qm_stack.MODEL, upstream_url)
        port = free_port()
        command = litellm_proxy.serve_command(executable, config, port, args.workers)
        ready = f"http://127.0.0.1:{port}/health/liveliness"
        env = litellm_proxy.environment()
        with running(
            "litellm", command, ready, workdir / "litellm.log", env, timeout_s=180
        ) as server:
            base_url = f"http://127.0.0.1:{port}/v1"
            key = litellm_proxy.MASTER_KEY
            target = load.Target("litellm", base_url, key, qm_stack.MODEL, args.stream)
            return measure(target, plan, {"server": lambda: tree(server.pid), "upstream": upstream})
    except (litellm_proxy.Unavailable, StartFailed) as exc:
        return [emit({"target": "litellm", "unavailable": str(exc)})]


def print_profile(path: Path) -> None:
    """The functions where `qm serve` spent most time under cProfile (numbers inflated by it)."""
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def overheads(rows: list[Row]) -> list[Row]:
    """Per gateway: latency added at the paced load, and requests/s at saturation."""
    by = {(row["target"], row["scenario"]): row for row in rows if "scenario" in row}
    direct = by.get(("direct", "paced"))
    found = []
    for name in ("quartermaster", "litellm"):
        paced, peak = by.get((name, "paced")), by.get((name, "max"))
        if direct is None or paced is None or peak is None or paced["p50_ms"] is None:
            continue
        added = {p: round(paced[f"{p}_ms"] - direct[f"{p}_ms"], 2) for p in ("p50", "p99")}
        found.append(
            {
                "target": name,
                "added_p50_ms": added["p50"],
                "added_p99_ms": added["p99"],
                "max_rps": peak["rps"],
                "direct_max_rps": by[("direct", "max")]["rps"],
                "server_cpu_ms_per_request": peak.get("server_cpu_ms_per_request"),
            }
        )
    return [emit({"overhead": row}) for row in found]


def table(rows: list[Row]) -> str:
    """The measurements and overheads as a plain-text table for people."""
    columns = ("target", "scenario", "requests", "errors", "rps", "p50_ms", "p90_ms", "p99_ms")
    cpu = ("server_cpu_ms_per_request", "postgres_cpu_ms_per_request")
    header = [*columns, "server_cpu_ms/req", "postgres_cpu_ms/req"]
    lines = [" | ".join(f"{name:>17}" for name in header)]
    for row in rows:
        if "scenario" in row:
            cells = [row.get(name) for name in (*columns, *cpu)]
            lines.append(" | ".join(f"{'-' if c is None else c!s:>17}" for c in cells))
        elif "unavailable" in row:
            lines.append(f"{row['target']:>17} | unavailable: {row['unavailable']}")
    for row in rows:
        if "overhead" in row:
            o = row["overhead"]
            lines.append(
                f"{o['target']}: adds p50 {o['added_p50_ms']} ms, p99 {o['added_p99_ms']} ms at "
                f"the paced load; {o['max_rps']} req/s at saturation (direct: "
                f"{o['direct_max_rps']}); {o['server_cpu_ms_per_request']} ms of its CPU/request"
            )
    return "\n".join(lines)


def meta(args: argparse.Namespace, plan: Plan) -> Row:
    return {
        "meta": {
            "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(),
            "quartermaster": __version__,
            "litellm": None if args.no_litellm else litellm_proxy.VERSION,
            "litellm_mode": None if args.no_litellm else litellm_proxy.MODE,
            "workers": args.workers,
            "stream": args.stream,
            "plan": vars(plan),
            "profiled": bool(args.profile),
        }
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def run(args: argparse.Namespace, plan: Plan) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="qm-gateway-bench-") as directory, ExitStack() as stack:
        workdir = Path(directory)
        port = free_port()
        command = [sys.executable, str(FAKE_UPSTREAM), "--port", str(port)]
        ready = f"http://127.0.0.1:{port}/healthz"
        fake = stack.enter_context(running("fake upstream", command, ready, workdir / "fake.log"))
        upstream_url = f"http://127.0.0.1:{port}/v1"
        upstream: Pids = lambda: {fake.pid}  # noqa: E731
        direct = load.Target("direct", upstream_url, "unused", "fake-model", args.stream)
        rows = measure(direct, plan, {"server": upstream})
        rows += bench_quartermaster(args, plan, workdir, upstream_url, upstream)
        rows += bench_litellm(args, plan, workdir, upstream_url, upstream)
    return rows + overheads(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="paced requests per second")
    parser.add_argument("--paced-requests", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000, help="at saturation")
    parser.add_argument("--concurrency", type=int, default=32, help="in flight at saturation")
    parser.add_argument("--time-cap", type=float, default=30.0, help="seconds per phase, at most")
    parser.add_argument("--workers", type=int, default=1, help="server processes per gateway")
    parser.add_argument("--stream", action="store_true", help="streamed chat (SSE) instead")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM run")
    parser.add_argument("--no-install-litellm", action="store_true")
    parser.add_argument("--profile", type=Path, help="run qm serve under cProfile, write here")
    args = parser.parse_args()
    if args.profile and args.workers != 1:
        parser.error("--profile needs --workers 1")
    plan = Plan(args.rate, args.paced_requests, args.requests, args.concurrency, args.time_cap)
    emit(meta(args, plan))
    print(table(run(args, plan)), file=sys.stderr)


if __name__ == "__main__":
    main()
