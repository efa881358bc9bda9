"""What `make run` shows a new user before the long llama.cpp build: what is built, about how
long it takes, and then its progress (every other install stays quiet)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_llama_build_is_announced_first_and_shows_its_progress(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    planned = subprocess.run(  # noqa: S603 - make with fixed arguments
        ["make", "-n", "-B", f"{venv}/.installed", f"VENV={venv}"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    installs = [i for i, line in enumerate(planned) if "pip install" in line]
    llama = next(i for i in installs if "llama-cpp-python" in planned[i])
    said = [i for i, line in enumerate(planned) if line.startswith("echo") and "minutes" in line]
    assert said, planned
    assert said[0] < llama
    assert "llama.cpp" in " ".join(planned[:llama])
    assert "--quiet" not in planned[llama]
    assert " -v " in planned[llama]
    assert all("--quiet" in planned[i] for i in installs if i != llama), planned
