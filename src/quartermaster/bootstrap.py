"""The composition root: settings in, the process's `Context` out (engine, unit of work, clock,
prices, the process's memory and its bookings in flight). The app, the `qm` commands and the
benches all build it here, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from quartermaster.domain.clock import Clock, SystemClock
from quartermaster.services.context import Context, SecurityConfig
from quartermaster.settings import Settings
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork


def build_context(
    settings: Settings, *, clock: Clock | None = None, serving: bool = False
) -> Context:
    """The Context for `settings`. `serving`: the process signs sessions, so the secret key is
    required and checked (a missing or weak one stops the start with what to do)."""
    engine = create_engine(
        settings.resolved_database_url,
        pool_size=settings.db_pool_size,
        pgbouncer=settings.db_pgbouncer,
    )
    replica_url = settings.resolved_replica_url
    reports = None
    if replica_url:
        reports = UnitOfWork(
            create_engine(
                replica_url, pool_size=settings.db_pool_size, pgbouncer=settings.db_pgbouncer
            )
        )
    security = SecurityConfig()
    if serving:
        security = SecurityConfig(
            secret_key=settings.secret(),
            session_ttl_s=settings.session_ttl_s,
            session_idle_s=settings.session_idle_s,
        )
    return Context(
        uow=UnitOfWork(engine),
        reports=reports,
        clock=clock or SystemClock(),
        security=security,
        prices=settings.prices(),
        hold_ttl_s=settings.hold_ttl_s,
    )


async def close(ctx: Context) -> None:
    """Finish the bookings in flight, then close the database connections."""
    await ctx.settlements.drain()
    await ctx.uow.engine.dispose()
    if ctx.reports is not None:
        await ctx.reports.engine.dispose()


@asynccontextmanager
async def opened(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[Context]:
    """A Context for one piece of work (a `qm` command, a bench), closed when it ends."""
    ctx = build_context(settings, clock=clock)
    try:
        yield ctx
    finally:
        await close(ctx)
