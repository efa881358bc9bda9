"""Fixtures of the reliability tests: the fault-injecting upstream (one per module) and a
database of the test module's own on the shared PostgreSQL, migrated by `qm init`."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import qm_stack

from tests.databases import ADMIN_DSN, postgres_reachable
from tests.reliability.stack import fault_upstream

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
