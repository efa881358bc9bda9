"""LiteLLM's proxy for the side-by-side run: installed from PyPI into a venv of its own
(bench/.litellm-venv, about 740 MB, git-ignored), started WITHOUT a database.

Its database mode (virtual keys, per-key/user/team budgets) needs Prisma query-engine binaries
that are downloaded at run time, which fails on a machine without internet; so it runs with a
master key, the local cost map, a proxy-wide `max_budget` (kept in memory), and one model routed
to the fake upstream with `api_base`. Results must say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VERSION = "1.106.2"
VENV = Path(__file__).resolve().parent / ".litellm-venv"
EXECUTABLE = VENV / "bin" / "litellm"
MASTER_KEY = "sk-bench-master-key"
MODE = "no database (master key, in-memory proxy-wide max_budget; no per-key budgets)"


class Unavailable(RuntimeError):
    """LiteLLM could not be installed or started here; the message says why."""


def ensure_installed(install: bool) -> Path:
    """The proxy's executable, installing `litellm[proxy]` first when allowed and missing."""
    if EXECUTABLE.exists():
        return EXECUTABLE
    if not install:
        raise Unavailable(f"{EXECUTABLE} is missing and --no-install-litellm was given")
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", _requirement()],
    ]
    print(f"installing {_requirement()} into {VENV} (once, about a minute)", file=sys.stderr)
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise Unavailable(f"`{' '.join(step)}` failed: {done.stderr.strip()[-800:]}")
    return EXECUTABLE


def _requirement() -> str:
    return f"litellm[proxy]=={VERSION}"


def write_config(workdir: Path, model: str, upstream_url: str) -> Path:
    """The proxy's config (JSON is valid YAML): one model on the fake upstream, priced so the
    budget has something to count."""
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": "openai/fake-model",
                    "api_base": upstream_url,
                    "api_key": "fake-upstream-key",
                    "input_cost_per_token": 0.000001,
                    "output_cost_per_token": 0.000001,
                },
            }
        ],
        "litellm_settings": {"max_budget": 1_000_000, "drop_params": True},
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = workdir / "litellm.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    return env | {
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }


def serve_command(executable: Path, config: Path, port: int, workers: int) -> list[str]:
    return [
        str(executable),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        str(workers),
    ]
