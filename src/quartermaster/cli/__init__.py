"""The `qm` command line. Every command prints a one-line error (no traceback) when it fails,
and every admin command takes `--json` for scripts. Commands live in one module per area and
register here."""

from __future__ import annotations

from typing import Annotated

import typer

from quartermaster import __version__
from quartermaster.cli import (
    audit,
    core,
    exports,
    ledger,
    metrics,
    models,
    org_requests,
    orgs,
    plans,
    usage,
    users,
)
from quartermaster.cli import datasets as dataset_commands

app = typer.Typer(
    help="Quartermaster: a self-hosted GenAI gateway with monthly token caps per member.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.registered_commands += core.core.registered_commands
app.add_typer(users.app, name="user")
app.add_typer(ledger.app, name="ledger")
app.add_typer(models.app, name="models")
org_requests.register(orgs.app)
app.add_typer(orgs.app, name="org")
app.add_typer(dataset_commands.app, name="dataset")
app.add_typer(metrics.app, name="metrics")
app.add_typer(exports.app, name="export")
app.add_typer(audit.app, name="audit")
app.add_typer(plans.app, name="plan")
app.add_typer(usage.app, name="usage")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qm {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Quartermaster's command line."""


def main() -> None:
    app()
