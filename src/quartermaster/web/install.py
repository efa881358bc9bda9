"""Adding the dashboard to the app: static files, pages, HTML errors, security headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from quartermaster.settings import Settings
from quartermaster.web.errors import render_error
from quartermaster.web.pages import (
    activity,
    auth,
    chat,
    datasets,
    operator,
    operator_purchases,
    org,
    org_bulk,
    org_members,
    org_models,
    org_requests,
    org_stats,
    security,
    settings,
)
from quartermaster.web.security import SecurityHeaders

STATIC = Path(__file__).parent / "static"
PAGES = (
    *(auth, settings, security, chat, datasets),
    *(org, org_members, org_bulk, org_requests, org_models, org_stats, activity),
    *(operator, operator_purchases),
)


def install(app: FastAPI, config: Settings) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in PAGES:
        app.include_router(module.router)
    app.state.render_error = render_error
    # Around the whole stack, Starlette's ServerErrorMiddleware included, so a 500 has them too.
    inner = app.build_middleware_stack
    hsts = config.secure_cookies
    app.build_middleware_stack = lambda: SecurityHeaders(inner(), hsts=hsts)  # type: ignore[method-assign]
