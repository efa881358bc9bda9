"""`qm user …`: what an operator does for people from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from quartermaster.cli import common
from quartermaster.domain.errors import NotFound
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import accounts, cac, mfa

app = typer.Typer(help="Accounts: create operators, reset MFA, unlink certificates.")


async def user_id_of(ctx: Context, email: str) -> int:
    """The id of the account registered for `email`, or NotFound."""
    async with ctx.uow.begin(write=False) as tx:
        user = await accounts.find_user_by_email(tx.session, email)
    if user is None:
        raise NotFound(f"no account is registered for {email}")
    return user.id


@app.command("create")
def create(
    email: str,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="QM_USER_PASSWORD",
            help="Password (asked for when not given; or set QM_USER_PASSWORD).",
        ),
    ],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    operator: Annotated[bool, typer.Option("--operator", help="Make a platform operator.")] = False,
    as_json: common.JsonOption = False,
) -> None:
    """Register an account (accepting the terms on the user's behalf is the operator's call).

    Example: qm user create ops@example.org --operator
    """
    form = accounts.Registration(email, password, name, accept_terms=True, is_operator=operator)
    user_id = common.run(common.settings(), lambda ctx: accounts.register(ctx, form))
    common.report(
        {"user_id": user_id, "email": email, "operator": operator},
        as_json,
        f"created {'operator' if operator else 'user'} {email} (id {user_id})",
    )


@app.command("reset-mfa")
def reset_mfa(email: str, as_json: common.JsonOption = False) -> None:
    """Clear a user's MFA after a lost device; their sessions end. Audited.

    Example: qm user reset-mfa alice@example.org
    """

    async def work(ctx: Context) -> None:
        await mfa.operator_reset(ctx, Principal.command_line(), await user_id_of(ctx, email))

    common.run(common.settings(), work)
    common.report({"email": email, "mfa": False}, as_json, f"MFA reset for {email}")


@app.command("unlink-cac")
def unlink_cac(email: str, as_json: common.JsonOption = False) -> None:
    """Remove the smart-card certificate linked to a user. Audited.

    Example: qm user unlink-cac alice@example.org
    """

    async def work(ctx: Context) -> None:
        await cac.unlink(ctx, Principal.command_line(), await user_id_of(ctx, email))

    common.run(common.settings(), work)
    common.report({"email": email, "cac": None}, as_json, f"certificate unlinked for {email}")
