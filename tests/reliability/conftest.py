"""Fixtures of the reliability tests: the fault-injecting upstream (one per module), a
database of the test module's own on the shared PostgreSQL, migrated by `qm init`, and the
gateways' environment reaching it directly or through PgBouncer in transaction mode."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import qm_stack

from tests.databases import ADMIN_DSN, postgres_reachable
from tests.reliability import pgbouncer
from tests.reliability.stack import fault_upstream, qm_environment

_databases = itertools.count()


@pytest.fixture(scope="module")
def upstream_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fault_upstream(tmp_path_factory.mktemp("upstream")) as url:
        yield url


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qm")


@pytest.fixture(scope="module")
def shared_database(workdir: Path, upstream_url: str) -> Iterator[qm_stack.Database]:
    """A database on the shared server (never stopped by these tests), dropped afterwards."""
    if not postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required under CI=true but is not reachable")
        pytest.skip("PostgreSQL is not reachable (set CI=true to make this a failure)")
    name = f"qm_reliability_{os.getpid()}_{next(_databases)}"
    database = qm_stack.create_database(ADMIN_DSN, name)
    try:
        env = qm_stack.environment(database, upstream_url, workdir)
        qm_stack.migrate(env, workdir)
        yield database
    finally:
        qm_stack.drop_database(database)


def _required(what: str) -> None:
    """Skip outside CI when `what` is missing; under CI=true a missing dependency fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true but is missing")
    pytest.skip(f"{what} is missing (set CI=true to make this a failure)")


@pytest.fixture(scope="module")
def bouncer_port() -> Iterator[int]:
    """PgBouncer (transaction mode) in front of the shared PostgreSQL, for the module."""
    if pgbouncer.binary() is None:
        _required("pgbouncer (Debian's package; `make test` installs it)")
    with pgbouncer.pgbouncer() as bouncer:
        yield bouncer


@pytest.fixture(params=["direct", "pgbouncer"])
def gateway_env(
    request: pytest.FixtureRequest,
    shared_database: qm_stack.Database,
    upstream_url: str,
    workdir: Path,
) -> dict[str, str]:
    """The gateways' environment: the database straight, or through PgBouncer in transaction
    mode with `QM_DB_PGBOUNCER=1` (docs/deploy.md)."""
    env = qm_environment(shared_database, upstream_url, workdir)
    if request.param == "direct":
        return env
    port = request.getfixturevalue("bouncer_port")
    url = pgbouncer.through(env["QM_DATABASE_URL"], port)
    return env | {"QM_DATABASE_URL": url, "QM_DB_PGBOUNCER": "1"}
