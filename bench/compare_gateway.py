"""The gateway bench on two versions of the code in one run: an earlier commit (`--before`) and
this checkout, alternated run by run (before, after, after, before, …) so that both see the
same minutes of a machine whose speed drifts. Each run is `bench/gateway_bench.py` from that
version's own tree, with its own code on PYTHONPATH and this venv's packages.

Usage: .venv/bin/python bench/compare_gateway.py [--before ad12959] [--runs 2]
       [-- ARGS FOR gateway_bench.py]   (default: --no-litellm --no-floor, chat only)

Prints each run's overhead rows as JSON lines, then a table of both on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_ARGS = ["--no-litellm", "--no-floor"]


def worktree(ref: str, into: Path) -> Path:
    """`ref` checked out (detached) under `into`, removed by `drop`."""
    path = into / f"qm-{ref}"
    git = ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), ref]
    subprocess.run(git, check=True)  # noqa: S603 - git, with a ref the operator gave
    return path


def drop(path: Path) -> None:
    git = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)]
    subprocess.run(git, check=False)  # noqa: S603 - git, on our own worktree


def bench(label: str, tree: Path, extra: list[str]) -> list[dict[str, Any]]:
    """One gateway bench of the code in `tree`: its overhead rows, labelled."""
    env = os.environ | {"PYTHONPATH": str(tree / "src")}
    command = [sys.executable, str(tree / "bench" / "gateway_bench.py"), *extra]
    print(f"{label}: {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(  # noqa: S603 - our own bench
        command, cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    found = [{"version": label, **row["overhead"]} for row in rows if "overhead" in row]
    for row in found:
        print(json.dumps(row), flush=True)
    return found


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        added = "; ".join(
            f"{scenario} +{a['p50']}/+{a['p99']} ms"
            for scenario, a in row["added_ms"].items()
            if a is not None
        )
        lines.append(
            f"{row['version']:>6} {row['target']:<24} {added}; {row['max_rps']} req/s "
            f"(direct {row['direct_max_rps']}), {row['server_cpu_ms_per_request']} ms CPU/req"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="ad12959", help="the earlier commit")
    parser.add_argument("--runs", type=int, default=2, help="runs of each version")
    parser.add_argument("extra", nargs="*", help="arguments for gateway_bench.py, after --")
    args = parser.parse_args()
    extra = args.extra or DEFAULT_ARGS
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="qm-compare-") as directory:
        before = worktree(args.before, Path(directory))
        try:
            for run in range(args.runs):
                order = [("before", before), ("after", ROOT)]
                for label, tree in order if run % 2 == 0 else order[::-1]:
                    rows += bench(label, tree, extra)
        finally:
            drop(before)
    print(table(sorted(rows, key=lambda row: (row["target"], row["version"]))), file=sys.stderr)


if __name__ == "__main__":
    main()
