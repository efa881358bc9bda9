"""`qm plan …`: individual plans, what operators do for people who pay them directly."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from quartermaster.cli import common
from quartermaster.cli.users import user_id_of
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import Term, TokenKind
from quartermaster.services import plans
from quartermaster.services.context import Context
from quartermaster.services.plans import subscriptions
from quartermaster.services.plans.payments import RecordedPayment

app = typer.Typer(help="Individual plans: the offer, who is on which, payments and refills.")
Json = common.JsonOption


@app.command("list")
def list_plans(as_json: Json = False) -> None:
    """Every plan, active or not, cheapest first.

    Example: qm plan list --json
    """
    found = common.run(common.settings(), lambda ctx: plans.list_plans(ctx, include_inactive=True))
    rows = [plans.public(terms) for terms in found]
    lines = "\n".join(
        f"{r['name']:<12} {r['monthly_inference_tokens']:>12,} inference "
        f"{r['monthly_training_tokens']:>11,} training  "
        f"${r['price_monthly']}/month ${r['price_yearly']}/year"
        f"{'  (default)' if r['is_default'] else ''}{'' if r['active'] else '  (inactive)'}"
        for r in rows
    )
    common.report(rows, as_json, lines)


@app.command("save")
def save(
    name: str,
    inference: Annotated[int, typer.Option(help="Monthly inference tokens.")],
    training: Annotated[int, typer.Option(help="Monthly training tokens.")],
    monthly: Annotated[str, typer.Option(help="Price per month.")],
    yearly: Annotated[str, typer.Option(help="Price per year.")],
    default: Annotated[bool, typer.Option("--default", help="Make it the free default.")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Hide it from new choices.")] = False,
    as_json: Json = False,
) -> None:
    """Create or change a plan. Audited.

    Example: qm plan save team --inference 5000000 --training 1000000 --monthly 45 --yearly 450
    """
    raw = {
        "name": name,
        "monthly_inference_tokens": inference,
        "monthly_training_tokens": training,
        "price_monthly": monthly,
        "price_yearly": yearly,
        "active": not inactive,
        "is_default": default,
    }

    async def work(ctx: Context) -> dict[str, object]:
        return plans.public(await plans.save(ctx, Principal.command_line(), plans.parse_terms(raw)))

    common.report(common.run(common.settings(), work), as_json, f"saved plan {name}")


@app.command("set")
def set_plan(
    email: str,
    plan: str,
    term: Annotated[Term, typer.Option(help="Billing term.")] = Term.MONTHLY,
    as_json: Json = False,
) -> None:
    """Move a user to a plan now (not pro-rated). Audited.

    Example: qm plan set ann@example.org plus --term yearly
    """

    async def work(ctx: Context) -> dict[str, str]:
        user_id = await user_id_of(ctx, email)
        return await subscriptions.change_plan(ctx, Principal.command_line(), plan, term, user_id)

    common.report(
        common.run(common.settings(), work), as_json, f"{email} is on {plan} ({term.value})"
    )


@app.command("record-payment")
def record_payment(
    email: str,
    first_period: Annotated[str, typer.Option("--from", help="First month paid, YYYY-MM.")],
    amount: Annotated[str, typer.Option(help="Amount received.")],
    reference: Annotated[str, typer.Option(help="Receipt or invoice number.")],
    as_json: Json = False,
) -> None:
    """Record money received for a user's plan: one term from --from. Audited.

    Example: qm plan record-payment ann@example.org --from 2026-11 --amount 20 --reference INV-7
    """

    async def work(ctx: Context) -> subscriptions.Payment:
        user_id = await user_id_of(ctx, email)
        return await subscriptions.record_payment(
            ctx, Principal.command_line(), user_id, first_period, Decimal(amount), reference
        )

    paid = common.run(common.settings(), work)
    value = {"from": paid.period_from, "to": paid.period_to, "amount": str(paid.amount)}
    common.report(
        value, as_json, f"recorded {paid.amount} for {paid.period_from}..{paid.period_to}"
    )


@app.command("refill")
def refill(
    email: str,
    kind: Annotated[TokenKind, typer.Option(help="Which cap to raise.")],
    tokens: Annotated[int, typer.Option(help="Tokens (whole bundles).")],
    reference: Annotated[str, typer.Option(help="Receipt of the payment received.")],
    as_json: Json = False,
) -> None:
    """Record a paid refill: extra tokens for the current month only. Audited.

    Example: qm plan refill ann@example.org --kind inference --tokens 2000000 --reference R-12
    """

    async def work(ctx: Context) -> dict[str, object]:
        user_id = await user_id_of(ctx, email)
        return await subscriptions.refill(
            ctx, Principal.command_line(), kind, tokens, RecordedPayment(reference), user_id
        )

    result = common.run(common.settings(), work)
    common.report(
        result, as_json, f"{email}: +{tokens:,} {kind.value} tokens for {result['period']}"
    )
