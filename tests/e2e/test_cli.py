"""The `qm` command as a user runs it: in a fresh directory, against either database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

QM = [sys.executable, "-m", "quartermaster"]


def run_qm(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*QM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    return {**clean, "QM_DATABASE_URL": database_url, "QM_DATA_DIR": str(tmp_path / "data")}


def test_version_is_printed(env: dict[str, str], tmp_path: Path) -> None:
    result = run_qm(["--version"], env, tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("qm ")


def test_init_twice_changes_nothing_the_second_time(env: dict[str, str], tmp_path: Path) -> None:
    first = run_qm(["init", "--json"], env, tmp_path)
    second = run_qm(["init", "--json"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["models_added"] == []
    assert json.loads(first.stdout)["schema"] == json.loads(second.stdout)["schema"]


def test_demo_json_prints_logins_with_api_keys(env: dict[str, str], tmp_path: Path) -> None:
    result = run_qm(["demo", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    logins = json.loads(result.stdout)
    assert len(logins) >= 5
    assert all(login["api_key"].startswith("qm-") for login in logins)
    assert {"admin", "member", "operator"} <= {login["role"] for login in logins}


def test_serve_without_a_secret_fails_with_one_clear_line(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    result = run_qm(["serve"], {**clean, "QM_DATA_DIR": str(tmp_path)}, tmp_path)
    assert result.returncode == 1
    assert "QM_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_answers_healthz_in_demo_mode(env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    env = {**env, "QM_DEMO": "1"}
    assert run_qm(["init"], env, tmp_path).returncode == 0
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [*QM, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start within 30 s"
                assert server.poll() is None, "server exited early"
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in output
