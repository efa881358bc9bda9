"""What every `qm` command shares: settings, running a service call, refusals, JSON, and a
console that never wraps what is piped."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape

from quartermaster import bootstrap
from quartermaster.domain.errors import DomainError
from quartermaster.http.errors import domain_error_body, error_body
from quartermaster.services.context import Context
from quartermaster.settings import ConfigurationError, Settings, load_settings

T = TypeVar("T")
_json_asked = ContextVar("json_asked", default=False)
"""Whether this command was given `--json`, so its refusal is JSON too (one command a process)."""


def _remember_json(value: bool) -> bool:
    _json_asked.set(value)
    return value


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON.", callback=_remember_json)
]
UNWRAPPED_WIDTH = 10_000
"""Piped output's width: rich would assume 80 columns and split every longer row in two."""


def _stdout_console() -> Console:
    """A terminal's width for a terminal; no wrapping for a pipe or a file."""
    console = Console()
    return console if console.is_terminal else Console(width=UNWRAPPED_WIDTH)


console = _stdout_console()


def _error_object(problem: str | DomainError | ConfigurationError) -> dict[str, Any]:
    if isinstance(problem, DomainError):
        return domain_error_body(problem)
    if isinstance(problem, ConfigurationError):
        return error_body(str(problem), "configuration_error")
    return error_body(problem, "invalid_request_error")


def fail(problem: str | DomainError | ConfigurationError) -> typer.Exit:
    """Report a refusal and return the Exit (status 1) to raise: with `--json`, the API's error
    object on stdout (scripts read one stream); otherwise one line on stderr."""
    if _json_asked.get():
        print_json(_error_object(problem))
    else:
        stderr = Console(stderr=True, soft_wrap=True)
        stderr.print(f"[red]error:[/red] {escape(str(problem))}", highlight=False)
    return typer.Exit(code=1)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        raise fail(exc) from None


def run(config: Settings, work: Callable[[Context], Awaitable[T]]) -> T:
    """Run one service call against the configured database; a refusal becomes `fail`'s."""

    async def runner() -> T:
        async with bootstrap.opened(config) as context:
            return await work(context)

    try:
        return asyncio.run(runner())
    except (DomainError, ConfigurationError) as exc:
        raise fail(exc) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def report(value: Any, as_json: bool, shown: RenderableType) -> None:
    """Print `value` as JSON for scripts, or `shown` (a line or a table) for people."""
    if as_json:
        print_json(value)
    else:
        console.print(shown, highlight=False)
