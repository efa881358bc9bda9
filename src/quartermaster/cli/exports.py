"""`qm export …`: the admin's CSV exports from the shell, streamed to a file or stdout.

ORG is an organization's name or id. Without `-o` the CSV goes to stdout; with `-o DIR` it is
written in DIR under its usual name (org and date); with `-o FILE`, to FILE.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from quartermaster.cli import common
from quartermaster.cli.orgs import OPERATOR
from quartermaster.services.context import Context
from quartermaster.services.enterprise import provisioning
from quartermaster.services.metrics import exports

app = typer.Typer(help="Export an organization's metrics as CSV.", no_args_is_help=True)
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="A file, or a directory for its usual name.")
]
MakeExport = Callable[[Context, int], Awaitable[exports.Export]]


async def _write(export: exports.Export, out: TextIO) -> int:
    rows = -1  # the header is not a row
    async for chunk in exports.csv_chunks(export):
        out.write(chunk)
        rows += chunk.count("\r\n")
    return rows


def _export(org: str, output: Path | None, make: MakeExport) -> None:
    into_directory = output is not None and output.is_dir()

    async def work(ctx: Context) -> tuple[str, int]:
        export = await make(ctx, await provisioning.find_org(ctx, OPERATOR, org))
        if output is None:
            return "-", await _write(export, sys.stdout)
        path = output / export.filename if into_directory else output
        with path.open("w", encoding="utf-8", newline="") as out:
            return str(path), await _write(export, out)

    where, rows = common.run(common.settings(), work)
    if output is not None:
        common.console.print(f"wrote {where} (header and about {rows:,} rows)", highlight=False)


@app.command("usage")
def usage(org: str, output: Output = None) -> None:
    """Token usage by month: period, inference_tokens, embedding_tokens, total_tokens.

    Example: qm export usage "ABC Corp" -o .
    """
    _export(org, output, lambda ctx, org_id: exports.token_usage(ctx, OPERATOR, org_id))


@app.command("users")
def users(org: str, output: Output = None) -> None:
    """The members: id, email, name, role, status, paid, banned, MFA, CAC, joined.

    Example: qm export users 3 -o users.csv
    """
    _export(org, output, lambda ctx, org_id: exports.users(ctx, OPERATOR, org_id))


@app.command("users-tokens")
def users_tokens(org: str, output: Output = None) -> None:
    """The members with their caps and usage (total, this and last month).

    Example: qm export users-tokens "ABC Corp" > users-tokens.csv
    """
    _export(org, output, lambda ctx, org_id: exports.users_with_tokens(ctx, OPERATOR, org_id))


@app.command("activity")
def activity(
    org: str,
    since: Annotated[str | None, typer.Option("--from", help="A date or datetime.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Inclusive date or datetime.")] = None,
    output: Output = None,
) -> None:
    """The activity log (changes, sign-ins, metered calls) for a date range, newest first.

    Example: qm export activity "ABC Corp" --from 2026-11-01 --to 2026-11-30 -o .
    """
    _export(
        org, output, lambda ctx, org_id: exports.activity_log(ctx, OPERATOR, org_id, since, until)
    )
