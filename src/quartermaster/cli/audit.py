"""`qm audit verify`: prove the activity log's hash chain is intact, or name where it breaks."""

from __future__ import annotations

import typer

from quartermaster.cli import common
from quartermaster.services.audit import chain

app = typer.Typer(help="Check the activity log's hash chain.", no_args_is_help=True)


@app.command()
def verify(as_json: common.JsonOption = False) -> None:
    """Recompute every audit event's hash from the first; print the first broken link and exit
    with status 1 if there is one.

    Example: qm audit verify --json | jq .broken
    """
    report = common.run(common.settings(), chain.verify)
    broken = report.broken
    if as_json:
        common.print_json(
            {
                "ok": report.ok,
                "events_checked": report.events_checked,
                "last_hash": report.last_hash,
                "broken": None if broken is None else broken.__dict__,
            }
        )
    elif broken is None:
        common.console.print(
            f"audit chain intact: {report.events_checked:,} events, last hash {report.last_hash}"
        )
    else:
        common.console.print(f"audit chain broken at {broken}", highlight=False)
    if broken is not None:
        raise typer.Exit(code=1)
