"""Fixtures every test can use: a fresh database per test on SQLite and PostgreSQL, a fixed
clock, a service context, and the app with an HTTP client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from quartermaster.app import create_app
from quartermaster.services.context import Context, SecurityConfig
from quartermaster.services.identity import passwords
from quartermaster.settings import Settings
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork
from tests.databases import PostgresTemplate, SqliteTemplate, postgres_reachable
from tests.fakes.clock import FixedClock

TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """argon2id at its lowest cost: the tests check behaviour, not the hash's strength."""
    saved = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    passwords._hasher = saved


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgresql_template() -> Iterator[PostgresTemplate]:
    if not postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required under CI=true but is not reachable")
        pytest.skip("PostgreSQL is not reachable (set CI=true to make this a failure)")
    template = PostgresTemplate()
    yield template
    template.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated, catalog-seeded database of its own for this test."""
    template: Any = request.getfixturevalue(f"{request.param}_template")
    url, handle = template.fresh()
    yield url
    template.drop(handle)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
async def ctx(database_url: str, clock: FixedClock) -> AsyncIterator[Context]:
    engine = create_engine(database_url)
    uow = UnitOfWork(engine)
    yield Context(uow=uow, clock=clock, security=SecurityConfig(TEST_SECRET))
    await engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, secret_key=TEST_SECRET, data_dir=tmp_path)


@pytest.fixture
async def app(settings: Settings, clock: FixedClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://qm.test") as http:
        yield http
