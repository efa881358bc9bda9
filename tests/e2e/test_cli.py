"""The `qm` command as a user runs it: in a fresh directory, against either database."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.servers import QM, free_port, qm_server


def run_qm(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*QM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def table_rows(output: str, title: str) -> list[list[str]]:
    """The cells of the table printed under `title`, its header first: a table's columns are
    two or more spaces apart, and it ends at a blank line."""
    lines = [line.strip() for line in output.splitlines()]
    start = lines.index(title) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return [re.split(r"\s{2,}", line) for line in lines[start:end]]


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_init_lists_each_model_it_adds_on_a_line_of_its_own(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A list joined by commas wrapped mid-line at 80 columns; one name a line never does."""
    env = {**env, "QM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"}
    first = run_qm(["init"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    catalog = json.loads(run_qm(["models", "list", "--json"], env, tmp_path).stdout)
    lines = first.stdout.splitlines()
    assert lines[1] == "added models:"
    assert {f"  {model['name']}" for model in catalog} <= set(lines)
    again = run_qm(["init"], env, tmp_path).stdout.splitlines()
    assert again[1:] == ["added models: none", "added plans: none"]


def test_demo_ends_with_a_key_and_a_call_ready_to_paste(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The README's curl uses $KEY: the demo says which key and prints the line that sets it."""
    shown = run_qm(["demo"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    exports = [line.strip() for line in lines if line.strip().startswith("export KEY=")]
    assert len(exports) == 1
    key = exports[0].removeprefix("export KEY=")
    owner = lines.index(f"            API key: {key}") - 1
    assert lines[owner].split()[:2] == ["member", "carol@acme.example"]
    (call,) = [line.strip() for line in lines if line.strip().startswith("curl ")]
    assert call.startswith("curl -s http://127.0.0.1:8000/v1/chat/completions ")
    assert '-H "Authorization: Bearer $KEY"' in call
    assert "smollm2-135m-instruct" in call
    assert "Carol Chen (carol@acme.example)" in shown.stdout


def test_serve_without_a_secret_fails_with_one_clear_line(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    result = run_qm(["serve"], {**clean, "QM_DATA_DIR": str(tmp_path)}, tmp_path)
    assert result.returncode == 1
    assert "QM_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_answers_healthz_in_demo_mode(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**env, "QM_DEMO": "1"}
    assert run_qm(["init"], env, tmp_path).returncode == 0
    with qm_server(env, tmp_path, port) as output:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    assert f"http://127.0.0.1:{port}/" in output[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_names_a_database_it_cannot_reach(env: dict[str, str], tmp_path: Path) -> None:
    """A wrong host in the URL is said at start, in one line an operator can act on, and the
    server still comes up to answer /healthz with the same words."""
    port = free_port()
    wrong = "postgresql://qm:hunter2@127.0.0.1:1/qm"
    env = {**env, "QM_DEMO": "1", "QM_DATABASE_URL": wrong}
    with qm_server(env, tmp_path, port) as output:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    said = "database unreachable at 127.0.0.1:1: nothing accepts connections there"
    assert f"warning: {said}; serving anyway" in output[0]
    assert health.status_code == 503
    assert health.json()["error"]["message"] == said
    assert "hunter2" not in output[0]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_serve_names_a_metrics_replica_it_cannot_reach(env: dict[str, str], tmp_path: Path) -> None:
    """A wrong replica URL is said at start too, with what it stops (the metrics pages); the
    process is healthy, since it meters calls on the primary, and /healthz names the replica."""
    port = free_port()
    env = {
        **env,
        "QM_DEMO": "1",
        "QM_DATABASE_REPLICA_URL": "postgresql://qm:hunter2@127.0.0.1:1/qm",
    }
    assert run_qm(["init"], env, tmp_path).returncode == 0
    with qm_server(env, tmp_path, port) as output:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    said = "unreachable at 127.0.0.1:1: nothing accepts connections there"
    assert (
        f"warning: the metrics replica is {said}; serving anyway, the org's metrics pages and "
        "exports answer 503 until it is fixed"
    ) in output[0]
    assert health.status_code == 200
    assert health.json()["replica"] == said
    assert "hunter2" not in output[0]


REQUEST = b"GET /healthz HTTP/1.1\r\nHost: qm.test\r\n\r\n"


def _answered(connection: socket.socket) -> bool:
    """Send one request on an open connection and read its whole answer: True if it is a 200,
    False if the server has closed the connection."""
    try:
        connection.sendall(REQUEST)
        answer = connection.makefile("rb")
        status = answer.readline()
        length = 0
        while (line := answer.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer.read(length)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return status.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_keeps_an_idle_connection_as_long_as_configured(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Clients and proxies reuse idle connections; the server must not close one before the
    configured time (a close during a reuse is a failed call), and closes it after."""
    port = free_port()
    env = {**env, "QM_DEMO": "1", "QM_KEEPALIVE_S": "2"}
    assert run_qm(["init"], env, tmp_path).returncode == 0
    with qm_server(env, tmp_path, port), socket.create_connection(("127.0.0.1", port)) as kept:
        kept.settimeout(5)
        assert _answered(kept)
        time.sleep(1)
        assert _answered(kept)  # idle for 1 s of the 2 allowed: still open
        time.sleep(3)
        assert not _answered(kept)  # idle past 2 s: closed by the server


def test_an_operator_gives_a_model_its_capabilities(env: dict[str, str], tmp_path: Path) -> None:
    """What a model can do is the catalog's: set from the command line, shown by `list`, and a
    value out of range is refused with the bound, nothing changed."""
    assert run_qm(["init"], env, tmp_path).returncode == 0
    model = "smollm2-135m-instruct"
    changed = run_qm(
        ["models", "set", model, "--tools", "--vision", "--max-choices", "4", "--json"],
        env,
        tmp_path,
    )
    assert changed.returncode == 0, changed.stderr
    spec = json.loads(changed.stdout)
    assert (spec["tools"], spec["vision"], spec["audio_input"], spec["max_choices"]) == (
        True,
        True,
        False,
        4,
    )
    listed = run_qm(["models", "list"], env, tmp_path).stdout
    line = next(row for row in listed.splitlines() if row.startswith(model))
    assert line.endswith("takes tools, vision; n up to 4")
    refused = run_qm(["models", "set", model, "--max-choices", "500"], env, tmp_path)
    assert refused.returncode != 0
    assert "max_choices must be a whole number from 1 to 128" in refused.stderr + refused.stdout
    again = json.loads(run_qm(["models", "list", "--json"], env, tmp_path).stdout)
    assert next(m for m in again if m["name"] == model)["max_choices"] == 4
