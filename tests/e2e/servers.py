"""Real server processes for end-to-end tests: `qm serve` and Debian's nginx, on free ports,
stopped when the test ends."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import quartermaster

QM = [sys.executable, "-m", "quartermaster"]
SOURCE = str(Path(quartermaster.__file__).resolve().parents[1])
"""The code under test, for the server too: a relative PYTHONPATH means nothing in the server's
working directory, where the interpreter would import whichever checkout is installed."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        assert process.poll() is None, f"{what} exited early"
        assert time.monotonic() < deadline, f"{what} did not start within 30 s"
        time.sleep(0.2)


def _answers(url: str, **kwargs: object) -> bool:
    try:
        httpx.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError:
        return False
    return True


@contextmanager
def qm_server(env: dict[str, str], cwd: Path, port: int) -> Iterator[list[str]]:
    """`qm serve` on `port`; yields a list that holds its output once it has stopped."""
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [*QM, "serve", "--port", str(port)],
        env={**env, "PYTHONPATH": SOURCE},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), server, "qm serve")
        yield output
    finally:
        server.terminate()
        output.append(server.communicate(timeout=20)[0])


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is required under CI=true (make test installs it with apt)")
        pytest.skip("nginx is not installed (make test installs it with apt)")
    return found


@contextmanager
def nginx_server(site_conf: str, prefix: Path, port: int) -> Iterator[None]:
    """Debian's nginx in the foreground with `site_conf` inside a minimal http block."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log warn;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n access_log off;\n client_body_temp_path {prefix}/body;\n"
        f" proxy_temp_path {prefix}/proxy;\n{site_conf}\n}}\n"
    )
    process = subprocess.Popen(  # noqa: S603 - the system's nginx with our config
        [nginx_binary(), "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(
            lambda: _answers(f"https://127.0.0.1:{port}/healthz", verify=False), process, "nginx"
        )
        yield
    finally:
        process.terminate()
        process.communicate(timeout=20)
