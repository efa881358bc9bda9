"""Fresh databases for tests on both backends, cloned from a migrated template.

SQLite: the template file is copied per test. PostgreSQL: `CREATE DATABASE … TEMPLATE …` per
test, dropped afterwards. PostgreSQL is used when reachable; with CI=true it must be.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from pathlib import Path

import asyncpg

from quartermaster.services.catalog import defaults
from quartermaster.services.context import Context
from quartermaster.store import migrate
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork

ADMIN_DSN = os.environ.get("QM_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
_counter = itertools.count()


def postgres_reachable() -> bool:
    async def probe() -> bool:
        try:
            connection = await asyncpg.connect(ADMIN_DSN, timeout=3)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await connection.close()
        return True

    return asyncio.run(probe())


def async_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def seed_catalog(url: str) -> None:
    """The default catalog in the migrated database at `url`."""
    engine = create_engine(url)
    try:
        await defaults.seed(Context(uow=UnitOfWork(engine)))
    finally:
        await engine.dispose()


class SqliteTemplate:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.template = directory / "template.db"
        url = f"sqlite+aiosqlite:///{self.template}"
        migrate.upgrade(url)
        asyncio.run(seed_catalog(url))

    def fresh(self) -> tuple[str, None]:
        path = self.directory / f"test-{next(_counter)}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}", None

    def drop(self, _: None) -> None:
        return None


class PostgresTemplate:
    def __init__(self) -> None:
        self.template = f"qm_template_{os.getpid()}"
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)"))
        asyncio.run(_admin(f"CREATE DATABASE {self.template}"))
        url = async_url(ADMIN_DSN, self.template)
        migrate.upgrade(url)
        asyncio.run(seed_catalog(url))

    def fresh(self) -> tuple[str, str]:
        name = f"qm_test_{os.getpid()}_{next(_counter)}"
        asyncio.run(_admin(f"CREATE DATABASE {name} TEMPLATE {self.template}"))
        return async_url(ADMIN_DSN, name), name

    def drop(self, name: str) -> None:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)"))
