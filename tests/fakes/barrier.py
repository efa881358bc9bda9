"""A write-ahead-log barrier that cannot be confirmed, as when PostgreSQL goes away mid-call:
patched over `store.wal_flush._flush`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import OperationalError

from quartermaster.store.uow import UnitOfWork


async def unconfirmed(_: UnitOfWork) -> datetime:
    raise OperationalError("barrier", None, ConnectionError("the server went away"))
