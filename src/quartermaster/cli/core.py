"""The operator's basics: create the database, serve, load the demo."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

from quartermaster import __version__, bootstrap
from quartermaster.cli import common, first_call
from quartermaster.domain.errors import DomainError
from quartermaster.services import demo, health
from quartermaster.services.catalog import defaults
from quartermaster.settings import ConfigurationError, Settings
from quartermaster.store import migrate
from quartermaster.store.db import is_sqlite

core = typer.Typer()


@core.command()
def init(as_json: common.JsonOption = False) -> None:
    """Create or upgrade the database schema and add missing catalog models. Safe to re-run.

    Example: QM_DATABASE_URL=postgresql://postgres@127.0.0.1/qm qm init
    """
    settings = common.settings()
    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        migrate.upgrade(url)
    except Exception as exc:
        raise common.fail(f"could not migrate the database: {type(exc).__name__}: {exc}") from None
    added = common.run(settings, defaults.seed)
    result = {"schema": migrate.head_revision(), **added}
    lines = [f"database ready at schema {result['schema']}"]
    lines += _listed("added models", added["models_added"])
    lines += _listed("added plans", added["plans_added"])
    common.report(result, as_json, "\n".join(lines))


def _listed(label: str, names: list[str]) -> list[str]:
    """`label: none`, or the label and then one name a line (a long list never wraps mid-name)."""
    return [f"{label}:", *(f"  {name}" for name in names)] if names else [f"{label}: none"]


@core.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes.")] = None,
) -> None:
    """Serve the gateway (/v1), the JSON API (/api) and the dashboard.

    Example: qm serve --host 0.0.0.0 --port 8000 --workers 4
    """
    import uvicorn

    settings = common.settings()
    try:
        settings.secret()
    except ConfigurationError as exc:
        raise common.fail(str(exc)) from None
    host, port = host or settings.host, port or settings.port
    for problem in _database_problems(settings):
        Console(stderr=True).print(
            f"[yellow]warning:[/yellow] {problem}", highlight=False, soft_wrap=True
        )
    common.console.print(f"Quartermaster {__version__} on http://{host}:{port}/  (Ctrl+C stops it)")
    uvicorn.run(
        "quartermaster.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        timeout_keep_alive=settings.keepalive_s,
    )


def _database_problems(settings: Settings) -> list[str]:
    """What stops the database serving, as /healthz would say it (services/health.py), what is
    wrong with the metrics replica, and a pooler in session mode, each with what serving anyway
    means. Checked twice on one connection: behind PgBouncer in transaction mode without
    QM_DB_PGBOUNCER, the second transaction's cached statements are gone (DISCARD ALL or another
    server connection)."""

    async def probe() -> tuple[dict[str, str | float], str | None]:
        async with bootstrap.opened(settings) as context:
            await health.check(context)
            state = await health.check(context)
            url = context.uow.engine.url
        return state, await health.pooling_problem(url)  # its server connections handed back

    try:
        state, pooling = asyncio.run(probe())
    except (DomainError, ConfigurationError) as exc:
        return [f"{exc}; serving anyway, /healthz answers 503 until it is fixed"]
    problems = [f"{pooling}; serving anyway"] if pooling else []
    replica = state.get("replica", "ok")
    if replica != "ok":
        problems.append(
            f"the metrics replica is {replica}; serving anyway, the org's metrics pages and "
            "exports answer 503 until it is fixed"
        )
    return problems


@core.command("demo")
def load_demo(as_json: common.JsonOption = False) -> None:
    """Load demo data once (an enterprise, its people, purchases, usage) and print the logins,
    with a fresh API key per demo user.

    Example: qm demo --json | jq -r '.[0].api_key'
    """
    settings = common.settings()
    logins = common.run(settings, demo.load)
    if as_json:
        common.print_json([asdict(login) for login in logins])
        return
    common.console.print(f"Demo logins (the password for all of them is {demo.DEMO_PASSWORD}):")
    for login in logins:
        common.console.print(f"  {login.role:<9} {login.email:<28} {login.name}", highlight=False)
        common.console.print(
            f"            API key: {login.api_key}", highlight=False, soft_wrap=True
        )
    for line in ["", *first_call.instructions(logins, settings)]:
        common.console.print(line, markup=False, highlight=False, soft_wrap=True)
