"""`qm org …`: enterprise accounts from the command line, run as the operator.

ORG is an organization's name or id; members are named by email.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from quartermaster.cli import common
from quartermaster.cli.tables import records
from quartermaster.cli.users import user_id_of
from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.principal import Principal
from quartermaster.domain.rate_limits import Limits
from quartermaster.domain.types import PurchaseKind, Role, Term
from quartermaster.services.context import Context
from quartermaster.services.enterprise import (
    allocations,
    membership,
    org_summary,
    provisioning,
    purchases,
    rate_limit_settings,
)

app = typer.Typer(help="Enterprise accounts: provision, purchases, members, allocations.")
OPERATOR = Principal.command_line()
Emails = Annotated[list[str], typer.Option("--member", "-m", help="Member email (repeat).")]
Admins = Annotated[list[str], typer.Option("--admin", "-a", help="Admin email (repeat).")]
Inference = Annotated[int, typer.Option("--inference-tokens", help="Monthly, in 2M bundles.")]
Training = Annotated[int, typer.Option("--training-tokens", help="Monthly, in 1M bundles.")]
TermOption = Annotated[Term, typer.Option("--term", help="monthly or yearly.")]
T = TypeVar("T")
ADMIN_COLUMNS = (
    ("Email", "email"),
    ("Name", "name"),
    ("Role", "role"),
    ("Paid", "paid"),
    ("Banned", "banned"),
    ("Max tokens", "max_inference_tokens"),
    ("Max train tokens", "max_training_tokens"),
    ("Version", "version"),
)
"""The token-administration guide's names for the two caps."""


def in_org(
    ref: str, work: Callable[[Context, int], Awaitable[T]]
) -> Callable[[Context], Awaitable[T]]:
    async def run(ctx: Context) -> T:
        return await work(ctx, await provisioning.find_org(ctx, OPERATOR, ref))

    return run


@app.command("provision")
def provision(
    name: str,
    members: Emails,
    admins: Admins,
    inference_tokens: Inference,
    billing_address: Annotated[str, typer.Option(help="Where the invoices go (required).")],
    training_tokens: Training = 0,
    term: TermOption = Term.YEARLY,
    additional_information: Annotated[
        str, typer.Option(help="Anything else the customer told sales.")
    ] = "",
    as_json: common.JsonOption = False,
) -> None:
    """Create an enterprise account; a refusal names every problem at once.

    Example: qm org provision "ABC Corp" -m ann@abc.example -m bob@abc.example
    -a ann@abc.example --inference-tokens 2000000 --billing-address "1 Main St, Springfield"
    """
    request = Provisioning(
        name,
        members,
        admins,
        inference_tokens,
        training_tokens,
        term,
        billing_address=billing_address,
        additional_information=additional_information,
    )
    result = common.run(common.settings(), lambda c: provisioning.provision(c, OPERATOR, request))
    common.report(result, as_json, f"provisioned {name} (id {result['org_id']})")


@app.command("list")
def list_orgs(as_json: common.JsonOption = False) -> None:
    """Every enterprise account with its member count."""
    rows = common.run(common.settings(), lambda ctx: provisioning.list_orgs(ctx, OPERATOR))
    lines = [f"{r['org_id']:>5}  {r['name']}  ({r['members']} members)" for r in rows]
    common.report(rows, as_json, "\n".join(lines) or "no organizations yet")


@app.command("summary")
def summary(org: str, as_json: common.JsonOption = False) -> None:
    """This month's purchased, assigned and balance of each kind of token.

    Example: qm org summary "ABC Corp" --json
    """
    work = in_org(org, lambda ctx, org_id: org_summary.summary(ctx, OPERATOR, org_id))
    s = common.run(common.settings(), work)
    line = (
        f"{s['name']} {s['current_month']}: {s['members']} members; inference "
        f"{s['tokens_assigned']:,}/{s['tokens_purchased']:,} assigned "
        f"(balance {s['tokens_balance']:,}); training {s['training_tokens_assigned']:,}/"
        f"{s['training_tokens_purchased']:,} (balance {s['training_tokens_balance']:,})"
        + ("; OVER-ASSIGNED: lower allocations" if s["over_assigned"] else "")
    )
    common.report(s, as_json, line)


def _buy(org: str, kind: PurchaseKind, order: purchases.Order, as_json: bool) -> None:
    work = in_org(org, lambda ctx, org_id: purchases.buy(ctx, OPERATOR, org_id, kind, order))
    line = common.run(common.settings(), work)
    common.report(
        line,
        as_json,
        f"recorded {kind.value} {line['id']}: {line['inference_tokens']:,} inference, "
        f"{line['training_tokens']:,} training a month, {line['starts_on']} to "
        f"{line['ends_on']}, {line['price']} {line['currency']}",
    )


@app.command("purchase")
def purchase(
    org: str,
    inference_tokens: Inference = 0,
    training_tokens: Training = 0,
    term: TermOption = Term.YEARLY,
    terms: Annotated[int, typer.Option(help="How many terms in a row.")] = 1,
    reference: Annotated[str | None, typer.Option(help="Invoice or order number.")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Record a subscription line from this month at the list price.

    Example: qm org purchase "ABC Corp" --inference-tokens 4000000 --term monthly --terms 3
    """
    order = purchases.Order(inference_tokens, training_tokens, term, terms, reference=reference)
    _buy(org, PurchaseKind.SUBSCRIPTION, order, as_json)


@app.command("topup")
def topup(
    org: str,
    inference_tokens: Inference = 0,
    training_tokens: Training = 0,
    as_json: common.JsonOption = False,
) -> None:
    """Record a top-up that counts for the current month only.

    Example: qm org topup "ABC Corp" --inference-tokens 2000000
    """
    _buy(org, PurchaseKind.TOPUP, purchases.Order(inference_tokens, training_tokens), as_json)


@app.command("members")
def members(org: str, as_json: common.JsonOption = False) -> None:
    """The user table: role, paid, banned, caps and their version."""
    work = in_org(org, lambda ctx, org_id: membership.list_members(ctx, OPERATOR, org_id))
    rows = common.run(common.settings(), work)
    common.report(rows, as_json, records(ADMIN_COLUMNS, rows))


@app.command("add-member")
def add_member(
    org: str,
    email: str,
    admin: Annotated[bool, typer.Option("--admin", help="Add as an admin.")] = False,
    as_json: common.JsonOption = False,
) -> None:
    """Add a registered user (they start with the org's minimum allocation)."""
    role = Role.ADMIN if admin else Role.MEMBER
    work = in_org(org, lambda c, org_id: membership.add_member(c, OPERATOR, org_id, email, role))
    result = common.run(common.settings(), work)
    common.report(result, as_json, f"added {email} as {role.value}")


@app.command("remove-member")
def remove_member(org: str, email: str, as_json: common.JsonOption = False) -> None:
    """End a membership; its history stays."""

    async def work(ctx: Context, org_id: int) -> None:
        user_id = await user_id_of(ctx, email)
        await membership.remove_member(ctx, OPERATOR, org_id, user_id)

    common.run(common.settings(), in_org(org, work))
    common.report({"email": email, "removed": True}, as_json, f"removed {email}")


@app.command("set-allocation")
def set_allocation(
    org: str,
    email: str,
    inference: Annotated[int, typer.Option("--inference", help="Monthly inference cap.")],
    training: Annotated[int, typer.Option("--training", help="Monthly training cap.")],
    version: Annotated[
        int | None, typer.Option(help="Version you read (default: the current one).")
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Set both of a member's monthly caps at once.

    Example: qm org set-allocation "ABC Corp" ann@abc.example --inference 500000 --training 0
    """

    async def work(ctx: Context, org_id: int) -> dict[str, int]:
        user_id = await user_id_of(ctx, email)
        seen = version or await _version(ctx, org_id, user_id)
        edit = allocations.CapsEdit(inference, training, seen)
        return await allocations.set_allocation(ctx, OPERATOR, org_id, user_id, edit)

    saved = common.run(common.settings(), in_org(org, work))
    common.report(
        saved,
        as_json,
        f"{email}: inference {inference:,}, training {training:,} (v{saved['version']})",
    )


async def _version(ctx: Context, org_id: int, user_id: int) -> int:
    rows = await membership.list_members(ctx, OPERATOR, org_id)
    return next((int(r["version"]) for r in rows if r["user_id"] == user_id), 1)


@app.command("rate-limits")
def set_rate_limits(
    org: str,
    rpm: Annotated[int | None, typer.Option(help="Calls per member per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per member per minute.")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Set the org's per-member rate limits; an option left out means no limit. Audited.

    Example: qm org rate-limits "ABC Corp" --rpm 60 --tpm 200000
    """

    async def work(ctx: Context, org_id: int) -> dict[str, int | None]:
        limits = await rate_limit_settings.set_limits(ctx, OPERATOR, org_id, Limits(rpm, tpm))
        return {
            "requests_per_minute": limits.requests_per_minute,
            "tokens_per_minute": limits.tokens_per_minute,
        }

    result = common.run(common.settings(), in_org(org, work))
    common.report(result, as_json, f"{org}: {rate_limits_text(result)}")


@app.command("set-member")
def set_member(
    org: str,
    email: str,
    role: Annotated[Role | None, typer.Option(help="admin or member.")] = None,
    paid: Annotated[bool | None, typer.Option("--paid/--unpaid", help="Seat paid?")] = None,
    banned: Annotated[bool | None, typer.Option("--banned/--unbanned", help="Ban?")] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Promote/demote (never the last admin), mark paid/unpaid, ban/unban. Audited.

    Example: qm org set-member "ABC Corp" bob@abc.example --role admin --unbanned
    """

    async def work(ctx: Context, org_id: int) -> dict[str, Any]:
        user_id = await user_id_of(ctx, email)
        changes = membership.MemberChanges(role, paid, banned)
        return await membership.update_member(ctx, OPERATOR, org_id, user_id, changes)

    result = common.run(common.settings(), in_org(org, work))
    common.report(result, as_json, f"{email}: {standing_text(result)}")


def rate_limits_text(limits: dict[str, int | None]) -> str:
    """ "at most 60 calls and 200,000 tokens per member per minute", or "no rate limits"."""
    calls, tokens = limits["requests_per_minute"], limits["tokens_per_minute"]
    parts = [f"{calls:,} calls" if calls is not None else ""]
    parts.append(f"{tokens:,} tokens" if tokens is not None else "")
    said = " and ".join(part for part in parts if part)
    return f"at most {said} per member per minute" if said else "no rate limits"


def standing_text(member: dict[str, Any]) -> str:
    """ "admin, paid, banned": the role and status `set-member` left the member with."""
    paid = "paid" if member["paid"] else "unpaid"
    return f"{member['role']}, {paid}, {'banned' if member['banned'] else 'not banned'}"
