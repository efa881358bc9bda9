"""`qm ledger …`: check the ledger's invariants and expire abandoned holds from the shell."""

from __future__ import annotations

from dataclasses import asdict

import typer

from quartermaster.cli import common
from quartermaster.services import ledger
from quartermaster.services.ledger.check import check as check_ledger

app = typer.Typer(help="Check the token ledger and expire abandoned holds.", no_args_is_help=True)


@app.command()
def check(as_json: common.JsonOption = False) -> None:
    """Verify Σ events = counters.used = Σ roll-ups, reserved = Σ pending holds, and
    Σ allocations ≤ pool; print every difference and exit with status 1 if there is one.

    Example: qm ledger check --json | jq '.differences[].invariant'
    """
    differences = common.run(common.settings(), check_ledger)
    if as_json:
        common.print_json({"ok": not differences, "differences": [asdict(d) for d in differences]})
    elif differences:
        for difference in differences:
            common.console.print(str(difference), highlight=False)
    else:
        common.console.print("ledger consistent: every invariant holds")
    if differences:
        raise typer.Exit(code=1)


@app.command()
def sweep(as_json: common.JsonOption = False) -> None:
    """Expire pending holds past their deadline and free their tokens (the server also does
    this every 30 s; run it by hand when no server is running).

    Example: qm ledger sweep --json
    """
    expired = common.run(common.settings(), ledger.sweep_expired)
    if as_json:
        common.print_json({"expired": expired})
    else:
        common.console.print(f"expired {expired} hold{'s' if expired != 1 else ''}")
