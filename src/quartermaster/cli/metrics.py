"""`qm metrics …`: the admin's metrics from the shell (as the operator). ORG is a name or id."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from quartermaster.cli import common, token_tables
from quartermaster.cli.orgs import OPERATOR, in_org
from quartermaster.cli.tables import records, stacked
from quartermaster.domain.activity import ActivityQuery, decode_cursor, parse_moment
from quartermaster.domain.member_table import MemberColumn, MemberQuery, MemberStatus
from quartermaster.domain.types import Role
from quartermaster.services.context import Context
from quartermaster.services.enterprise import org_pool
from quartermaster.services.metrics import activity as activity_service
from quartermaster.services.metrics import member_stats, token_stats

app = typer.Typer(help="Account metrics: the user table, token statistics, activity.")
STATS_COLUMNS = (
    ("ID", "user_id"),
    ("Email", "email"),
    ("Role", "role"),
    ("Status", "status"),
    ("Max inference tokens", "max_inference_tokens"),
    ("Max embedding tokens", "max_training_tokens"),
    ("Total usage", "total_tokens"),
    ("Monthly inference", "inference_this_month"),
    ("Prev month inference", "inference_previous_month"),
    ("Monthly training", "training_this_month"),
)
"""The account-metrics guide's columns (the training cap is "Max embedding tokens" there)."""


@app.command("members")
def members(
    org: str,
    sort: MemberColumn = MemberColumn.USER_ID,
    desc: Annotated[bool, typer.Option("--desc", help="Largest first.")] = False,
    email: Annotated[str | None, typer.Option(help="Email contains.")] = None,
    role: Role | None = None,
    status: MemberStatus | None = None,
    limit: int = 50,
    offset: int = 0,
    as_json: common.JsonOption = False,
) -> None:
    """The user table with usage, sorted and filtered.

    Example: qm metrics members "ABC Corp" --sort total_tokens --desc --limit 10
    """
    query = MemberQuery(sort, desc, email, role, status, limit, offset)
    work = in_org(org, lambda ctx, org_id: member_stats.member_stats(ctx, OPERATOR, org_id, query))
    page = common.run(common.settings(), work)
    shown = stacked(
        records(STATS_COLUMNS, page["members"]),
        f"{page['offset'] + len(page['members'])} of {page['total']} members",
    )
    common.report(page, as_json, shown)


@app.command("tokens")
def tokens(org: str, as_json: common.JsonOption = False) -> None:
    """This month's projection, then token usage by year and by month (inference, training,
    requests), by model and by route (all time).

    Example: qm metrics tokens "ABC Corp" --json | jq .routes
    """
    work = in_org(org, lambda ctx, org_id: token_stats.org_statistics(ctx, OPERATOR, org_id))
    stats = common.run(common.settings(), work)
    common.report(stats, as_json, token_tables.statistics(stats))


@app.command("activity")
def activity(
    org: str,
    user_id: Annotated[int | None, typer.Option("--user", help="A member's user id.")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. member, signin, usage.inference")] = None,
    since: Annotated[str | None, typer.Option("--from", help="A date or datetime.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Inclusive date or datetime.")] = None,
    limit: int = 50,
    cursor: str | None = None,
    as_json: common.JsonOption = False,
) -> None:
    """One page of the activity log, newest first; `--cursor` continues.

    Example: qm metrics activity "ABC Corp" --action usage.inference --from 2026-11-01
    """

    async def page(ctx: Context, org_id: int) -> dict[str, Any]:
        async with ctx.uow.begin(write=False) as tx:
            tz = (await org_pool.get_org(tx.session, org_id)).timezone
        start = parse_moment(since, tz, end=False, param="from")
        end = parse_moment(until, tz, end=True, param="to")
        cursor_key = decode_cursor(cursor) if cursor else None
        query = ActivityQuery(user_id, action, start, end, limit, cursor_key)
        return await activity_service.page(ctx, OPERATOR, org_id, query)

    result = common.run(common.settings(), in_org(org, page))
    entries: list[dict[str, object]] = result["entries"]
    lines = [f"{e['at']}  {e['action']:<20} {e['email'] or '-'}" for e in entries]
    lines.append(f"next: --cursor {result['next_cursor']}" if result["next_cursor"] else "end")
    common.report(result, as_json, "\n".join(lines))
