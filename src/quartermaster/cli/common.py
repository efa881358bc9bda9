"""What every `qm` command shares: settings, running a service call, one-line errors, JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from quartermaster import bootstrap
from quartermaster.domain.errors import DomainError
from quartermaster.services.context import Context
from quartermaster.settings import ConfigurationError, Settings, load_settings

console = Console()
T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str) -> typer.Exit:
    """Print `message` as one line on stderr; raise the returned Exit (status 1)."""
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise fail(str(exc)) from None


def run(config: Settings, work: Callable[[Context], Awaitable[T]]) -> T:
    """Run one service call against the configured database, turning errors into one line."""

    async def runner() -> T:
        async with bootstrap.opened(config) as context:
            return await work(context)

    try:
        return asyncio.run(runner())
    except (DomainError, ConfigurationError) as exc:
        raise fail(str(exc)) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def report(value: Any, as_json: bool, line: str) -> None:
    """Print `value` as JSON for scripts, or `line` for people."""
    if as_json:
        print_json(value)
    else:
        console.print(line, highlight=False)
