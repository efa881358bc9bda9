"""`qm org requests|decide`: members' requests for more tokens, from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from quartermaster.cli import common
from quartermaster.cli.orgs import OPERATOR, in_org
from quartermaster.domain.requests import RequestStatus
from quartermaster.services.context import Context
from quartermaster.services.enterprise import token_requests


def list_requests(
    org: str,
    status: Annotated[RequestStatus | None, typer.Option(help="Only this status.")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Token requests, newest first.

    Example: qm org requests "ABC Corp" --status pending
    """

    async def work(ctx: Context, org_id: int) -> list[dict[str, Any]]:
        return await token_requests.list_for_org(ctx, OPERATOR, org_id, status)

    rows = common.run(common.settings(), in_org(org, work))
    lines = "\n".join(
        f"#{r['id']} {r['status']:<8} {r['email']} {r['amount']:,} {r['kind']}: {r['reason']}"
        for r in rows
    )
    common.report(rows, as_json, lines or "no requests")


def decide(
    org: str,
    request_id: int,
    approve: Annotated[bool, typer.Option("--approve/--deny", help="Approve or deny.")],
    amount: Annotated[int | None, typer.Option(help="Approve a different amount.")] = None,
    note: Annotated[str, typer.Option(help="A note the member sees.")] = "",
    as_json: common.JsonOption = False,
) -> None:
    """Approve (raising the member's cap within the pool) or deny a pending request. Audited.

    Example: qm org decide "ABC Corp" 12 --approve --amount 500000 --note "for the pilot"
    """

    async def work(ctx: Context, org_id: int) -> dict[str, Any]:
        decision = token_requests.Decision(approve, amount, note)
        return await token_requests.decide(ctx, OPERATOR, org_id, request_id, decision)

    result = common.run(common.settings(), in_org(org, work))
    common.report(result, as_json, f"request #{request_id}: {result['status']}")


def register(app: typer.Typer) -> None:
    """Add these commands to the `qm org` group."""
    app.command("requests")(list_requests)
    app.command("decide")(decide)
