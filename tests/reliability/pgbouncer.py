"""PgBouncer in transaction mode in front of the shared PostgreSQL, as docs/deploy.md describes
it for PgBouncer older than 1.21 (Debian's is 1.18): `QM_DB_PGBOUNCER=1` on the gateways,
`DISCARD ALL` after every transaction, and a pool small enough that consecutive transactions
of one client really do land on other server connections. Or in session mode, the operator's
mistake `qm serve` names.

PgBouncer refuses to run as root: under root it runs as the `postgres` user, from a directory
of its own that user can read."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.databases import ADMIN_DSN
from tests.e2e.servers import free_port

UPSTREAM_PORT = urlsplit(ADMIN_DSN).port or 5432
"""The shared PostgreSQL's port, which PgBouncer forwards to."""
SERVER_CONNECTIONS = 4
"""Server connections per database and user: fewer than the gateways' clients."""
READY_TIMEOUT_S = 15.0


def binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )


def _config(directory: Path, port: int, upstream_port: int, mode: str, wait_s: int) -> Path:
    (directory / "users.txt").write_text('"postgres" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n* = host=127.0.0.1 port={upstream_port}\n\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
        f"pool_mode = {mode}\n"
        "server_reset_query = DISCARD ALL\nserver_reset_query_always = 1\n"
        f"default_pool_size = {SERVER_CONNECTIONS}\nmax_client_conn = 500\n"
        f"query_wait_timeout = {wait_s}\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
    )
    return config


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not listen on {port} within {READY_TIMEOUT_S:g} s")


@contextmanager
def pgbouncer(mode: str = "transaction", wait_s: int = 120) -> Iterator[int]:
    """PgBouncer in `mode` (its pool_mode) in front of the shared PostgreSQL, on a free port
    until the block ends; yields the port. A client waits at most `wait_s` for a server
    connection (query_wait_timeout)."""
    executable = binary()
    assert executable is not None, "pgbouncer is not installed"
    directory = Path(tempfile.mkdtemp(prefix="qm-pgbouncer-"))
    port = free_port()
    config = _config(directory, port, UPSTREAM_PORT, mode, wait_s)
    command = [executable, str(config)]
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(  # noqa: S603 - our own command
        command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        _wait_listening(port, process, directory / "pgbouncer.log")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def through(url: str, port: int) -> str:
    """`url` (…@127.0.0.1:5432/db, or no port) pointed at PgBouncer's port instead."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    address = f"{parts.hostname}:{port}"
    return urlunsplit(parts._replace(netloc=f"{user}@{address}" if user else address))
