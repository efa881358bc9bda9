"""The `qm` command line. Every command prints a one-line error (no traceback) when it fails,
and every admin command takes `--json` for scripts."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from quartermaster import __version__
from quartermaster.domain.errors import DomainError
from quartermaster.services import catalog, demo
from quartermaster.services.context import Context
from quartermaster.settings import ConfigurationError, Settings, load_settings
from quartermaster.store import migrate
from quartermaster.store.db import create_engine, is_sqlite
from quartermaster.store.uow import UnitOfWork

app = typer.Typer(
    help="Quartermaster: a self-hosted GenAI gateway with monthly token caps per member.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None


def _run(settings: Settings, work: Callable[[Context], Awaitable[T]]) -> T:
    """Run one service call against the configured database, turning errors into one line."""

    async def runner() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            return await work(Context(uow=UnitOfWork(engine)))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(runner())
    except (DomainError, ConfigurationError) as exc:
        raise _fail(str(exc)) from None


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _version(value: bool) -> None:
    if value:
        console.print(f"qm {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Quartermaster's command line."""


@app.command()
def init(as_json: JsonOption = False) -> None:
    """Create or upgrade the database schema and add missing catalog models. Safe to re-run.

    Example: QM_DATABASE_URL=postgresql://postgres@127.0.0.1/qm qm init
    """
    settings = _settings()
    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        migrate.upgrade(url)
    except Exception as exc:
        raise _fail(f"could not migrate the database: {type(exc).__name__}: {exc}") from None
    added = _run(settings, lambda ctx: catalog.seed(ctx, catalog.default_specs()))
    result = {"schema": migrate.head_revision(), "models_added": added}
    if as_json:
        _print_json(result)
    else:
        console.print(
            f"database ready at schema {result['schema']}; models added: "
            f"{', '.join(added) if added else 'none'}"
        )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes.")] = None,
) -> None:
    """Serve the gateway (/v1), the JSON API (/api) and the dashboard.

    Example: qm serve --host 0.0.0.0 --port 8000 --workers 4
    """
    import uvicorn

    settings = _settings()
    try:
        settings.secret()
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    host, port = host or settings.host, port or settings.port
    console.print(f"Quartermaster {__version__} on http://{host}:{port}/  (Ctrl+C stops it)")
    uvicorn.run(
        "quartermaster.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
    )


@app.command("demo")
def load_demo(as_json: JsonOption = False) -> None:
    """Load demo data once (an enterprise, its people, purchases, usage) and print the logins,
    with a fresh API key per demo user.

    Example: qm demo --json | jq -r '.[0].api_key'
    """
    settings = _settings()
    logins = _run(settings, demo.load)
    if as_json:
        _print_json([asdict(login) for login in logins])
        return
    console.print(f"Demo logins (the password for all of them is {demo.DEMO_PASSWORD}):")
    for login in logins:
        console.print(f"  {login.role:<9} {login.email:<28} {login.name}", highlight=False)
        console.print(f"            API key: {login.api_key}", highlight=False, soft_wrap=True)


def main() -> None:
    app()
