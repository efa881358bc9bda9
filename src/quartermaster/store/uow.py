"""The unit of work: one transaction per service call, rolled back unless committed.

    async with uow.begin() as tx:
        tx.session.add(...)
        await tx.commit()

Leaving the block without `commit()` — by return or by exception — rolls everything back, so a
refused request never leaves a partial write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from quartermaster.store.db import writer


@dataclass
class Transaction:
    session: AsyncSession
    committed: bool = False

    async def commit(self) -> None:
        await self.session.commit()
        self.committed = True


class UnitOfWork:
    """Hands out transactions on one engine; reads and writes use separate session factories."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._readers = async_sessionmaker(engine, expire_on_commit=False)
        self._writers = async_sessionmaker(writer(engine), expire_on_commit=False)
        self._autocommit = engine.dialect.name == "postgresql"
        self._statements = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._autocommit
            else writer(engine)
        )

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one self-contained statement on a hot path. On PostgreSQL it runs
        in autocommit, saving the BEGIN and COMMIT round trips; never use it for two statements
        that must agree with each other."""
        async with self._statements.connect() as connection:
            yield connection
            if not self._autocommit:
                await connection.commit()

    @asynccontextmanager
    async def begin(self, *, write: bool = True) -> AsyncIterator[Transaction]:
        factory = self._writers if write else self._readers
        async with factory() as session:
            tx = Transaction(session)
            try:
                yield tx
            finally:
                if not tx.committed:
                    # Keep what was read usable after the block (reads end this way too).
                    session.expunge_all()
                    await session.rollback()
