"""Gateway overhead: chat latency and requests/s straight to a fast fake upstream, through
Quartermaster (ledger on PostgreSQL), and through LiteLLM's proxy, side by side.

Usage: .venv/bin/python bench/gateway_bench.py [--rates 10 50] [--paced-seconds 10]
       [--serial 500] [--requests 1000] [--concurrency 32] [--time-cap 30] [--slices 5]
       [--workers 1] [--stream] [--routes chat responses messages] [--upstream-delay-ms 0]
       [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--no-litellm] [--no-floor]
       [--no-install-litellm] [--rate-limited | --individual] [--profile qm.prof]

Everything runs on loopback: the fake upstream; the floor (bench/bare_proxy.py, the thinnest
proxy on the same serving stack, alone and with one write round trip to PostgreSQL per call);
`qm serve` on a throw-away database (qm_bench_<pid>, dropped at the end); and LiteLLM from its
own venv (bench/.litellm-venv, installed from PyPI on first use). Each target is warmed up, then
measured at paced loads (each of `--rates` requests/s for `--paced-seconds`, for latency), with
`--serial` requests one at a time back to back (latency without idle wake-ups), and at
`--concurrency` requests in flight (for requests/s). Quartermaster is measured by each of
`--routes` in turn (chat completions, the Responses API, Anthropic's Messages API), each beside
the same chat sent straight to the upstream. Each latency phase runs in `--slices` parts,
alternating straight to the upstream and through the gateway, so that both are measured in the
same seconds. Prints one JSON line per measurement and per gateway and rate (added latency = its
p50/p99 minus that of the direct slices beside it), then a table on stderr.
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
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import litellm_proxy
import load
import qm_stack
from processes import StartFailed, cpu_by_pid, cpu_used, free_port, running, tree

from quartermaster import __version__
from quartermaster.domain.rate_limits import Limits

HERE = Path(__file__).resolve().parent
FAKE_UPSTREAM = HERE / "fake_upstream.py"
BARE_PROXY = HERE / "bare_proxy.py"
GATEWAYS = (
    "floor",
    "floor+write",
    "quartermaster",
    "quartermaster/responses",
    "quartermaster/messages",
    "litellm",
)
PROFILED_SERVE = HERE / "profiled_serve.py"
UNREACHED_LIMITS = Limits(requests_per_minute=10**7, tokens_per_minute=10**13)
"""`--rate-limited`: the highest limits the API takes, which no run reaches; every call is then
also counted into its minute."""
Pids = Callable[[], set[int]]
Row = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    rates: tuple[float, ...]
    paced_seconds: float
    requests: int
    concurrency: int
    time_cap_s: float
    serial: int = 500
    warmup: int = 100
    slices: int = 5


def emit(row: Row) -> Row:
    print(json.dumps(row), flush=True)
    return row


Phase = Callable[[load.Target, int], load.Outcome]


def _phases(plan: Plan) -> dict[str, tuple[Phase, int]]:
    """Each paced rate, one request at a time back to back, then saturation: name → how to run
    it against a target, and for how many requests. The serial phase is latency with the
    processes awake: on an idle virtual machine every hop between processes also pays for
    waking one up, which the paced phases include."""
    phases: dict[str, tuple[Phase, int]] = {}
    for rate in plan.rates:
        paced = partial(_run, load.paced, rate=rate, time_cap_s=plan.time_cap_s)
        phases[f"paced@{rate:g}"] = (paced, round(rate * plan.paced_seconds))
    if plan.serial:
        serial = partial(_run, load.saturate, concurrency=1, time_cap_s=plan.time_cap_s)
        phases["serial"] = (serial, plan.serial)
    saturated = partial(
        _run, load.saturate, concurrency=plan.concurrency, time_cap_s=plan.time_cap_s
    )
    phases["max"] = (saturated, plan.requests)
    return phases


def _run(
    phase: Callable[..., Coroutine[Any, Any, load.Outcome]],
    target: load.Target,
    requests: int,
    **options: Any,
) -> load.Outcome:
    return asyncio.run(phase(target, requests=requests, **options))


def _alternated(
    phase: Phase, target: load.Target, baseline: load.Target, requests: int, slices: int
) -> tuple[load.Outcome, load.Outcome]:
    """The phase cut into `slices` parts, each run straight to the upstream and then through
    the target: both see the machine as it is in the same seconds. This VM's speed drifts by
    half within an hour, which a baseline measured minutes earlier would count as overhead."""
    through, straight = load.Outcome(), load.Outcome()
    for part in range(slices):
        count = requests // slices + (1 if part < requests % slices else 0)
        straight.add(phase(baseline, count))
        through.add(phase(target, count))
    return through, straight


def measure(
    target: load.Target,
    plan: Plan,
    watched: dict[str, Pids],
    baseline: load.Target | None = None,
    scenarios: tuple[str, ...] | None = None,
) -> list[Row]:
    """Warm up, then the latency phases (alternating with `baseline` when given, whose rows
    then say `"beside": target`) and the saturating one, with the CPU each watched process
    group spent per request it served (the upstream also serves the baseline's)."""
    asyncio.run(load.saturate(target, 4, plan.warmup, plan.time_cap_s))
    rows: list[Row] = []
    for scenario, (phase, requests) in _phases(plan).items():
        if scenarios is not None and scenario not in scenarios:
            continue
        before = {name: cpu_by_pid(pids()) for name, pids in watched.items()}
        straight = None
        if baseline is None or scenario == "max":
            outcome = phase(target, requests)
        else:
            outcome, straight = _alternated(phase, target, baseline, requests, plan.slices)
        row = {"target": target.name, "scenario": scenario, **outcome.summary()}
        beside = 0 if straight is None else len(straight.latencies_s)
        for name, pids in watched.items():
            used = cpu_used(before[name], cpu_by_pid(pids() | set(before[name])))
            served = row["requests"] + (beside if name == "upstream" else 0)
            row[f"{name}_cpu_ms_per_request"] = round(1000 * used / max(1, served), 2)
        rows.append(emit(row))
        if straight is not None:
            base = {"target": baseline.name, "beside": target.name, "scenario": scenario}
            rows.append(emit(base | straight.summary()))
    return rows


def direct_target(upstream_url: str, stream: bool) -> load.Target:
    """Straight to the fake upstream: the baseline of every added latency."""
    return load.Target("direct", upstream_url, "unused", "fake-model", stream)


def bench_floor(
    args: argparse.Namespace, plan: Plan, workdir: Path, upstream_url: str, upstream: Pids
) -> list[Row]:
    """The bare proxy (bench/bare_proxy.py) alone, then with one write round trip per call: what
    the hops cost any Python gateway on this machine, before any work of its own."""
    if args.no_floor:
        return []
    database = qm_stack.create_database(args.postgres, f"qm_bench_floor_{os.getpid()}")
    rows: list[Row] = []
    try:
        for name, extra in (("floor", []), ("floor+write", ["--database", database.dsn])):
            port = free_port()
            command = [sys.executable, str(BARE_PROXY), "--port", str(port)]
            command += ["--upstream", upstream_url, *extra]
            ready = f"http://127.0.0.1:{port}/healthz"
            with running(name, command, ready, workdir / f"{name}.log") as server:
                base_url = f"http://127.0.0.1:{port}/v1"
                target = load.Target(name, base_url, "unused", "fake-model", args.stream)
                watched = {"server": partial(tree, server.pid), "upstream": upstream}
                if extra:
                    watched["postgres"] = partial(qm_stack.backend_pids, database)
                rows += measure(target, plan, watched, direct_target(upstream_url, args.stream))
    finally:
        qm_stack.drop_database(database)
    return rows


def bench_quartermaster(
    args: argparse.Namespace, plan: Plan, workdir: Path, upstream_url: str, upstream: Pids
) -> list[Row]:
    database = qm_stack.create_database(args.postgres)
    try:
        env = qm_stack.environment(database, upstream_url, workdir)
        if args.individual:
            key = qm_stack.initialize_individual(env, workdir)
        else:
            limits = UNREACHED_LIMITS if args.rate_limited else qm_stack.NO_LIMITS
            key = qm_stack.initialize(env, workdir, limits)
        port = free_port()
        command = qm_stack.serve_command(port, args.workers)
        if args.profile:
            command = [sys.executable, str(PROFILED_SERVE), "--port", str(port)]
            command += ["--out", str(args.profile.resolve())]
        ready = f"http://127.0.0.1:{port}/healthz"
        with running("qm serve", command, ready, workdir / "qm.log", env, cwd=workdir) as server:
            base_url = f"http://127.0.0.1:{port}/v1"
            watched = {
                "server": lambda: tree(server.pid),
                "postgres": lambda: qm_stack.backend_pids(database),
                "upstream": upstream,
            }
            rows = []
            for route in args.routes:  # each beside the same chat straight to the upstream
                name = "quartermaster" if route == "chat" else f"quartermaster/{route}"
                target = load.Target(name, base_url, key, qm_stack.MODEL, args.stream, route)
                rows += measure(target, plan, watched, direct_target(upstream_url, args.stream))
    finally:
        qm_stack.drop_database(database)
    if args.profile:
        print_profile(args.profile, plan.warmup + sum(row["requests"] for row in rows))
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
            watched = {"server": lambda: tree(server.pid), "upstream": upstream}
            return measure(target, plan, watched, direct_target(upstream_url, args.stream))
    except (litellm_proxy.Unavailable, StartFailed) as exc:
        return [emit({"target": "litellm", "unavailable": str(exc)})]


def print_profile(path: Path, requests: int) -> None:
    """Where `qm serve` spent its time under cProfile (inflated by it, and muddled by SQLAlchemy's
    greenlets), and its database round trips per chat request (exact)."""
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(30)
    trips = json.loads(path.with_suffix(".sql.json").read_text())
    emit({"round_trips_per_request": round(sum(trips.values()) / requests, 2)})
    for statement, count in trips.items():
        print(f"{count / requests:6.2f}  {statement}", file=sys.stderr)


def _added(row: Row, direct: Row) -> dict[str, float] | None:
    if row["p50_ms"] is None or direct["p50_ms"] is None:
        return None
    return {p: round(row[f"{p}_ms"] - direct[f"{p}_ms"], 2) for p in ("p50", "p99")}


def overheads(rows: list[Row]) -> list[Row]:
    """Per gateway: latency added at each paced rate and serially (vs the direct run beside it,
    slice by slice), and its requests/s and CPU per request at saturation."""
    measured = [row for row in rows if "scenario" in row]
    by = {(row["target"], row.get("beside"), row["scenario"]): row for row in measured}
    found = []
    for name in GATEWAYS:
        peak, direct_peak = by.get((name, None, "max")), by.get(("direct", None, "max"))
        if peak is None or direct_peak is None:
            continue
        added = {
            scenario: _added(row, by[("direct", name, scenario)])
            for (target, _, scenario), row in by.items()
            if target == name and ("direct", name, scenario) in by
        }
        overhead = {
            "target": name,
            "added_ms": added,
            "max_rps": peak["rps"],
            "direct_max_rps": direct_peak["rps"],
            "server_cpu_ms_per_request": peak.get("server_cpu_ms_per_request"),
        }
        found.append(emit({"overhead": overhead}))
    return found


def table(rows: list[Row]) -> str:
    """The measurements and overheads as a plain-text table for people."""
    columns = ("target", "scenario", "requests", "errors", "rps", "p50_ms", "p90_ms", "p99_ms")
    cpu = ("server_cpu_ms_per_request", "postgres_cpu_ms_per_request")
    header = [*columns, "server_cpu_ms/req", "postgres_cpu_ms/req"]
    lines = [" | ".join(f"{name:>17}" for name in header)]
    for row in rows:
        if "scenario" in row:
            cells = [row.get(name) for name in (*columns, *cpu)]
            if "beside" in row:  # the slices straight to the upstream, between the gateway's
                cells[0] = f"direct/{row['beside']}"
            lines.append(" | ".join(f"{'-' if c is None else c!s:>17}" for c in cells))
        elif "unavailable" in row:
            lines.append(f"{row['target']:>17} | unavailable: {row['unavailable']}")
    for row in rows:
        if "overhead" in row:
            o = row["overhead"]
            added = "; ".join(
                f"{scenario}: +{a['p50']} ms p50, +{a['p99']} ms p99"
                for scenario, a in o["added_ms"].items()
                if a is not None
            )
            lines.append(
                f"{o['target']} adds {added}; {o['max_rps']} req/s at saturation (direct: "
                f"{o['direct_max_rps']}), {o['server_cpu_ms_per_request']} ms of its CPU/request"
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
            "routes": args.routes,
            "upstream_delay_ms": args.upstream_delay_ms,
            "plan": vars(plan),
            "profiled": bool(args.profile),
            "rate_limited": args.rate_limited,
            "individual": args.individual,
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
        command += ["--delay-ms", str(args.upstream_delay_ms)]
        ready = f"http://127.0.0.1:{port}/healthz"
        fake = stack.enter_context(running("fake upstream", command, ready, workdir / "fake.log"))
        upstream_url = f"http://127.0.0.1:{port}/v1"
        upstream: Pids = lambda: {fake.pid}  # noqa: E731
        direct = direct_target(upstream_url, args.stream)
        rows = measure(direct, plan, {"server": upstream}, scenarios=("max",))
        rows += bench_floor(args, plan, workdir, upstream_url, upstream)
        rows += bench_quartermaster(args, plan, workdir, upstream_url, upstream)
        rows += bench_litellm(args, plan, workdir, upstream_url, upstream)
    return rows + overheads(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 50.0])
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="per paced rate")
    parser.add_argument("--requests", type=int, default=1000, help="at saturation")
    parser.add_argument("--concurrency", type=int, default=32, help="in flight at saturation")
    parser.add_argument("--serial", type=int, default=500, help="requests one at a time (0: skip)")
    parser.add_argument("--time-cap", type=float, default=30.0, help="seconds per phase, at most")
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="latency phases alternate this many slices straight to the upstream and through",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes per gateway")
    parser.add_argument("--stream", action="store_true", help="streamed chat (SSE) instead")
    parser.add_argument(
        "--routes",
        nargs="+",
        choices=sorted(load.ROUTES),
        default=["chat", "responses", "messages"],
        help="the gateway's routes to send the chat by (the upstream always gets chat)",
    )
    parser.add_argument(
        "--upstream-delay-ms", type=float, default=0.0, help="the fake model's time per answer"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM run")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare-proxy floor")
    parser.add_argument("--no-install-litellm", action="store_true")
    parser.add_argument(
        "--rate-limited", action="store_true", help="the bench org has per-member rate limits"
    )
    parser.add_argument(
        "--individual",
        action="store_true",
        help="the bench user is outside any org, on the free plan with a month's refill",
    )
    parser.add_argument("--profile", type=Path, help="run qm serve under cProfile, write here")
    args = parser.parse_args()
    if args.profile and args.workers != 1:
        parser.error("--profile needs --workers 1")
    if args.rate_limited and args.individual:
        parser.error("--rate-limited is for an org's member; --individual has no org")
    plan = Plan(
        tuple(args.rates),
        args.paced_seconds,
        args.requests,
        args.concurrency,
        args.time_cap,
        args.serial,
        slices=args.slices,
    )
    emit(meta(args, plan))
    print(table(run(args, plan)), file=sys.stderr)


if __name__ == "__main__":
    main()
