"""`qm usage …`: usage events partitioned by month (PostgreSQL) and old months archived."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from quartermaster.cli import common, tables
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.ledger import archive as usage_archive
from quartermaster.services.ledger import partitioning

app = typer.Typer(
    help="Partition usage events by month and archive old months.", no_args_is_help=True
)
OPERATOR = Principal.command_line()


@app.command()
def partition(as_json: common.JsonOption = False) -> None:
    """Partition usage events by month (PostgreSQL), or add the months ahead if they already
    are; lists the partitions. Converting copies every event with the table locked, so run it
    in a quiet hour: bookings wait for it (42 s at 10 M events on 2 CPUs).

    Example: qm usage partition
    """

    async def work(ctx: Context) -> partitioning.Partitioned:
        return await partitioning.partition(ctx, OPERATOR)

    done = common.run(common.settings(), work)
    rows = [(p.name, p.first or "default", p.end or "-", max(p.rows, 0)) for p in done.partitions]
    if done.converted:
        headline = f"usage events partitioned by month: {len(done.created)} partitions"
    else:
        headline = f"already partitioned; {len(done.created)} partition(s) added"
    common.report(
        asdict(done),
        as_json,
        tables.stacked(
            headline,
            tables.table(["Partition", "From", "Before", "Rows (estimate)"], rows),
        ),
    )


@app.command("archive")
def archive_months(
    through: Annotated[
        str, typer.Option(help="The last month to archive, YYYY-MM; it must be closed.")
    ],
    as_json: common.JsonOption = False,
) -> None:
    """Remove the usage events of every month up to --through (dropping their partitions when
    partitioned), keeping what they added up to: monthly totals, caps and `qm ledger check`
    are unchanged; the activity log and the events export no longer list those calls. Dump
    them first if you must keep them (docs/deploy.md, Retention).

    Example: qm usage archive --through 2025-12
    """

    async def work(ctx: Context) -> usage_archive.Archived:
        return await usage_archive.archive(ctx, OPERATOR, through)

    done = common.run(common.settings(), work)
    dropped = ", ".join(done.partitions_dropped) or "none"
    common.report(
        asdict(done),
        as_json,
        f"archived every month through {done.through}: {done.events:,} events of"
        f" {done.tokens:,} tokens; partitions dropped: {dropped}",
    )
