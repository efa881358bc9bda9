"""The app: the FastAPI application that serves /v1, /api and the dashboard, on the Context the
composition root builds (bootstrap.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import Depends, FastAPI
from sqlalchemy.exc import InterfaceError, OperationalError

from quartermaster import __version__, bootstrap
from quartermaster.api import (
    auth,
    datasets,
    health,
    me,
    metrics,
    my_requests,
    my_usage,
    operator,
    org_limits,
    org_models,
    orgs,
    plans,
    tokenize,
    users,
)
from quartermaster.domain.clock import Clock
from quartermaster.gateway import (
    anthropic_errors,
    chat,
    completions,
    embeddings,
    messages,
    models,
    responses,
)
from quartermaster.gateway import errors as gateway_errors
from quartermaster.http import body_limit, errors, openapi, text_guard
from quartermaster.http.providers import LazyProviders
from quartermaster.providers.config import load_upstreams
from quartermaster.providers.registry import ProviderRegistry, build_registry
from quartermaster.services import catalog, ledger
from quartermaster.services.context import Context
from quartermaster.services.ledger import fold, partitioning
from quartermaster.services.plans import payments
from quartermaster.settings import Settings, load_settings
from quartermaster.web import install as web


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    providers: ProviderRegistry | None = None,
) -> FastAPI:
    """An app wired to real dependencies, or to the ones given (tests pass a fixed clock and
    providers with fake upstreams). Without `providers`, every enabled catalog model gets one
    at start-up, and a model whose provider cannot be built stops the start with the reason."""
    settings = settings or load_settings()
    ctx = bootstrap.build_context(settings, clock=clock, serving=True)  # checks the secret

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Frees the holds of gateway processes that died mid-call; one per process is safe.
        with suppress(OperationalError, InterfaceError, OSError, TimeoutError):
            await lazy.get()  # now if the database answers; else on first use
        sweeper = asyncio.create_task(ledger.run_sweeper(ctx, settings.sweep_interval_s))
        folder = asyncio.create_task(fold.run_folder(ctx))  # closed months, for metrics
        keeper = asyncio.create_task(partitioning.run_keeper(ctx))  # months ahead, if partitioned
        try:
            yield
        finally:
            for task in (sweeper, folder, keeper):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await lazy.close()
            await bootstrap.close(ctx)

    async def build() -> ProviderRegistry:
        return providers or await _build_providers(ctx, settings)

    lazy = LazyProviders(build)
    app = FastAPI(
        title="Quartermaster",
        version=__version__,
        lifespan=lifespan,
        dependencies=[Depends(text_guard.refuse_unsafe_text)],
    )
    app.add_middleware(body_limit.BodyLimit)
    app.state.providers = lazy
    app.state.settings = settings
    app.state.ctx = ctx
    app.state.payments = payments.provider_named(settings.payment_provider)
    errors.install(app)
    openapi.install(app)
    gateway_errors.install(app)
    anthropic_errors.install(app)
    routers = (  # the gateway's first: routes are matched in order, on every call
        chat,
        completions,
        responses,
        messages,
        embeddings,
        models,
        health,
        auth,
        me,
        users,
        tokenize,
        orgs,
        org_models,
        org_limits,
        operator,
        datasets,
        plans,
        my_requests,
        metrics,
        my_usage,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(plans.operator)
    web.install(app, settings)
    return app


async def _build_providers(ctx: Context, settings: Settings) -> ProviderRegistry:
    specs = await catalog.list_models(ctx)
    return build_registry(specs, load_upstreams(settings.upstreams_file))
