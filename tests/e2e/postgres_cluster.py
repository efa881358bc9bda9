"""A throw-away PostgreSQL cluster of a test's own, for tests that stop the database.

`initdb` into a fresh temporary directory, started on a free loopback port with its socket in
that directory, stopped (cleanly or as a crash) and started again as the test needs, removed at
the end. The shared server on 127.0.0.1:5432 is never touched. Debian's binaries are used
(/usr/lib/postgresql/<version>/bin); as root they run as the `postgres` user, since PostgreSQL
refuses to run as root. Missing binaries fail the test under CI=true and skip it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.servers import free_port
from tests.e2e.wan_relay import wan_relay

DEBIAN_POSTGRES = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's binary directory, or a skip (a failure under CI)."""
    found = sorted(
        (path.parent for path in DEBIAN_POSTGRES.glob("*/bin/initdb")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"PostgreSQL binaries are required under CI=true (none in {DEBIAN_POSTGRES})"
            )
        pytest.skip(f"PostgreSQL binaries are not installed (looked in {DEBIAN_POSTGRES})")
    return found[-1]


class PostgresCluster:
    """One cluster in `directory` on `port`; `start`, `stop` and `remove` block until done.
    `settings` are given to the server at start (`-c name=value`), never written into the data
    directory, so a standby copied from this cluster does not inherit them."""

    def __init__(
        self, bin_dir: Path, directory: Path, port: int, settings: Mapping[str, str] | None = None
    ) -> None:
        self.bin_dir, self.directory, self.port = bin_dir, directory, port
        self.settings = dict(settings or {})
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", SUPERUSER, "--"] if self._as_postgres else []
        subprocess.run(  # noqa: S603 - PostgreSQL's own tools with our arguments
            [*prefix, str(self.bin_dir / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _own_directory(self) -> None:
        if self._as_postgres:
            shutil.chown(self.directory, SUPERUSER, SUPERUSER)

    def init(self) -> None:
        """A new cluster. initdb's pg_hba.conf trusts loopback connections, replication too."""
        self._own_directory()
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--no-sync")

    def init_standby(
        self, primary: PostgresCluster, name: str, via_port: int | None = None
    ) -> None:
        """A hot standby of `primary` (started), copied by `pg_basebackup -R`: it streams from
        the primary as `name`, the application name `synchronous_standby_names` lists, straight
        or through a relay listening on `via_port` (the copy itself is made straight)."""
        self._own_directory()
        source = f"host=127.0.0.1 port={primary.port} user={SUPERUSER} application_name={name}"
        self._run("pg_basebackup", "-D", str(self.data), "-d", source, "-R", "-X", "stream")
        if via_port is not None:  # the last line of postgresql.auto.conf wins
            relayed = source.replace(f"port={primary.port}", f"port={via_port}")
            with (self.data / "postgresql.auto.conf").open("a") as conf:
                conf.write(f"primary_conninfo = '{relayed}'\n")

    def promote(self) -> None:
        """The standby becomes a primary; returns once it accepts writes."""
        self._run("pg_ctl", "promote", "-D", str(self.data), "-w", "-t", "30")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.directory} -c fsync=off -c max_connections=100"
        )
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects clients and shuts down cleanly; `immediate` is a crash (the next
        start recovers from the write-ahead log)."""
        assert mode in ("smart", "fast", "immediate"), f"unknown pg_ctl stop mode {mode}"
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "30")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def _new_cluster(bin_dir: Path, settings: Mapping[str, str] | None = None) -> PostgresCluster:
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="qm-pg-"))
    return PostgresCluster(bin_dir, directory, free_port(), settings)


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A started throw-away cluster (trust auth, user `postgres`), removed after the test."""
    cluster = _new_cluster(postgres_bin())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


STANDBY_NAME = "qm_standby"


@dataclass(frozen=True)
class Replication:
    """How the standby follows its primary: `synchronous` (the primary waits for its flush
    before a commit returns) or not, across a link of `one_way_delay_s` (tests/e2e/wan_relay.py)."""

    synchronous: bool = True
    one_way_delay_s: float = 0.0


@contextmanager
def primary_with_standby(
    replication: Replication | None = None,
) -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """A started primary and a hot standby streaming from it, as `replication` says (by default
    synchronous, on loopback), both removed on the way out; a context manager, not only a
    fixture, so that bench/replica_bench.py builds them too. The standby may take a moment to
    connect: see `pg_stat_replication.sync_state`."""
    replication = replication or Replication()
    bin_dir = postgres_bin()
    settings = {"synchronous_standby_names": STANDBY_NAME} if replication.synchronous else {}
    primary = _new_cluster(bin_dir, settings)
    standby = _new_cluster(bin_dir)
    with ExitStack() as cleanup:  # each is removed, even when the other's removal fails
        cleanup.callback(primary.remove)
        primary.init()
        primary.start()
        via_port = None
        if replication.one_way_delay_s:  # the relay goes last, once nothing uses it
            link = wan_relay(primary.port, replication.one_way_delay_s)
            via_port = cleanup.enter_context(link)
        cleanup.callback(standby.remove)
        standby.init_standby(primary, STANDBY_NAME, via_port)
        standby.start()
        yield primary, standby


@pytest.fixture
def primary_and_standby(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """`primary_with_standby` for one test, as a `Replication` parametrized indirectly says (by
    default synchronous, on loopback)."""
    with primary_with_standby(getattr(request, "param", None)) as clusters:
        yield clusters
