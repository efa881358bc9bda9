"""The composition root: builds the FastAPI app that serves /v1, /api and the dashboard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from quartermaster import __version__
from quartermaster.api import auth, errors, health, me, my_requests, operator, orgs, users
from quartermaster.domain.clock import Clock, SystemClock
from quartermaster.services import ledger
from quartermaster.services.context import Context, SecurityConfig
from quartermaster.settings import Settings, load_settings
from quartermaster.store.db import create_engine
from quartermaster.store.uow import UnitOfWork


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """An app wired to real dependencies, or to the ones given (tests pass a fixed clock)."""
    settings = settings or load_settings()
    security = SecurityConfig(
        secret_key=settings.secret(),  # refuses to start with a missing or weak secret
        session_ttl_s=settings.session_ttl_s,
        session_idle_s=settings.session_idle_s,
    )
    engine = create_engine(settings.resolved_database_url, pool_size=settings.db_pool_size)
    ctx = Context(
        uow=UnitOfWork(engine),
        clock=clock or SystemClock(),
        security=security,
        prices=settings.prices(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Frees the holds of gateway processes that died mid-call; one per process is safe.
        sweeper = asyncio.create_task(ledger.run_sweeper(ctx))
        try:
            yield
        finally:
            sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await sweeper
            await engine.dispose()

    app = FastAPI(title="Quartermaster", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.ctx = ctx
    errors.install(app)
    for router in (
        health.router,
        auth.router,
        me.router,
        users.router,
        orgs.router,
        operator.router,
        my_requests.router,
    ):
        app.include_router(router)
    return app
