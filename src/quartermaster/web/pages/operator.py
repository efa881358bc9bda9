"""Operator pages: the enterprise accounts, provisioning one (a refusal lists every problem next
to the form, which keeps what was typed), and resetting a user's MFA or unlinking their CAC."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quartermaster.domain.enterprise import ADDITIONAL_INFORMATION_MAX_CHARS, Provisioning
from quartermaster.domain.errors import Conflict, InvalidInput, NotFound
from quartermaster.domain.types import Term
from quartermaster.http.deps import Ctx
from quartermaster.services.context import Context
from quartermaster.services.enterprise import provisioning
from quartermaster.services.identity import accounts, cac, mfa
from quartermaster.web.org_scope import OperatorViewer
from quartermaster.web.pages.org_members import whole
from quartermaster.web.render import page
from quartermaster.web.session import Viewer

router = APIRouter(prefix="/operator", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]
Emails = Annotated[str, Form(max_length=400_000)]
LongText = Annotated[str, Form(max_length=ADDITIONAL_INFORMATION_MAX_CHARS)]
BLANK = {"name": "", "billing_address": "", "additional_information": ""}
BLANK |= {"member_emails": "", "admin_emails": ""}
BLANK |= {"inference_tokens": "2,000,000", "training_tokens": "0", "term": "yearly"}
BLANK |= {"timezone": "UTC"}


def emails_in(text: str) -> list[str]:
    """Addresses typed one per line, or separated by commas, semicolons or spaces."""
    return [part for part in re.split(r"[\s,;]+", text) if part]


async def _render(
    request: Request, ctx: Context, viewer: Viewer, status: int = 200, **extra: Any
) -> Response:
    context = {
        "active": "operator",
        "orgs": await provisioning.list_orgs(ctx, viewer.principal),
        "typed": BLANK,
        "problems": [],
        **extra,
    }
    return page(request, "operator.html", context, status)


@router.get("")
async def accounts_page(request: Request, ctx: Ctx, viewer: OperatorViewer) -> Response:
    return await _render(request, ctx, viewer)


def _provisioning(typed: dict[str, str]) -> Provisioning:
    if typed["term"] not in {t.value for t in Term}:
        raise InvalidInput("term is monthly or yearly", param="term")
    return Provisioning(
        name=typed["name"],
        member_emails=emails_in(typed["member_emails"]),
        admin_emails=emails_in(typed["admin_emails"]),
        inference_tokens=whole(typed["inference_tokens"] or "0", "inference_tokens"),
        training_tokens=whole(typed["training_tokens"] or "0", "training_tokens"),
        term=Term(typed["term"]),
        billing_address=typed["billing_address"],
        additional_information=typed["additional_information"],
        timezone=typed["timezone"].strip() or "UTC",
    )


@router.post("/orgs")
async def provision(
    request: Request,
    ctx: Ctx,
    viewer: OperatorViewer,
    name: Text = "",
    member_emails: Emails = "",
    admin_emails: Emails = "",
    inference_tokens: Text = "",
    training_tokens: Text = "0",
    term: Text = "yearly",
    timezone: Text = "UTC",
    billing_address: Text = "",
    additional_information: LongText = "",
) -> Response:
    typed = {"name": name, "billing_address": billing_address, "term": term}
    typed |= {"additional_information": additional_information}
    typed |= {"member_emails": member_emails, "admin_emails": admin_emails}
    typed |= {"inference_tokens": inference_tokens, "training_tokens": training_tokens}
    typed |= {"timezone": timezone}
    try:
        made = await provisioning.provision(ctx, viewer.principal, _provisioning(typed))
    except (InvalidInput, Conflict) as refused:
        problems = refused.details.get("problems") or [refused.message]
        return await _render(request, ctx, viewer, 400, typed=typed, problems=problems)
    return RedirectResponse(f"/operator/orgs/{made['org_id']}", status_code=303)


@router.post("/users/{action}")
async def reset_user(
    request: Request, action: str, ctx: Ctx, viewer: OperatorViewer, email: Text = ""
) -> Response:
    """`reset-mfa` (lost device: their sessions end) or `unlink-cac`, by the user's email."""
    if action not in {"reset-mfa", "unlink-cac"}:
        raise NotFound("there is no such page")
    try:
        user_id = await accounts.user_id_for(ctx, viewer.principal, email.strip())
    except NotFound as missing:
        return await _render(request, ctx, viewer, 404, error=missing.message, reset_email=email)
    if action == "reset-mfa":
        await mfa.operator_reset(ctx, viewer.principal, user_id)
        notice = f"Two-factor authentication reset for {email.strip()}; their sessions ended."
    else:
        await cac.unlink(ctx, viewer.principal, user_id)
        notice = f"Certificate unlinked for {email.strip()}."
    return await _render(request, ctx, viewer, notice=notice)
