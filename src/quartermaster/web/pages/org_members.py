"""Changing members from the user table: both token caps of a row in one save (a stale edit is
shown in the row with the current and the attempted values), promote/demote, paid/unpaid,
ban/unban, add and remove. HTMX requests get the row back; plain form posts get the page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quartermaster.domain.amounts import MAX_TOKEN_AMOUNT, check_token_amount
from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.types import Role
from quartermaster.http.deps import Ctx
from quartermaster.services.context import Context
from quartermaster.services.enterprise import allocations, membership, org_summary
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.pages.org import member_row, users_page
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/org/members", include_in_schema=False)
Text = Annotated[str, Form(max_length=2000)]
Choice = Annotated[str, Form(max_length=10)]


def whole(text: str, field: str) -> int:
    """A token amount typed into a form: digits (separators allowed), bounded as the services
    bound it (domain/amounts.py)."""
    cleaned = text.replace(",", "").replace("_", "").strip()
    if not cleaned.isdigit():
        raise InvalidInput(f"{field} must be a whole number of tokens", param=field)
    if len(cleaned) > len(str(MAX_TOKEN_AMOUNT)):
        raise InvalidInput(f"{field} is at most {MAX_TOKEN_AMOUNT:,} tokens", param=field)
    return check_token_amount(int(cleaned), field)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


async def _answer(
    request: Request, ctx: Context, viewer: Viewer, org_id: int, user_id: int, state: dict[str, Any]
) -> Response:
    """The refreshed row (with the summary cards swapped out of band) for HTMX, or the page."""
    status = 409 if state.get("conflict") else 400 if state.get("error") else 200
    if not is_htmx(request):
        rows_state = {user_id: state}
        return await users_page(request, ctx, viewer, org_id, status, rows_state=rows_state)
    context = {
        "m": await member_row(ctx, viewer, org_id, user_id),
        "org": await org_summary.summary(ctx, viewer.principal, org_id),
        "state": state,
        "oob": True,
    }
    return page(request, "_org_row.html", context, status)


@router.post("/{user_id}/allocation")
async def save_caps(
    request: Request,
    user_id: int,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    max_inference_tokens: Text = "",
    max_training_tokens: Text = "",
    version: Text = "",
) -> Response:
    """Both caps of the row, saved together or not at all."""
    attempted = {"max_inference_tokens": max_inference_tokens}
    attempted["max_training_tokens"] = max_training_tokens
    state: dict[str, Any] = {"attempted": attempted}
    try:
        edit = allocations.CapsEdit(
            whole(max_inference_tokens, "max_inference_tokens"),
            whole(max_training_tokens, "max_training_tokens"),
            whole(version, "version"),
        )
        await allocations.set_allocation(ctx, viewer.principal, org_id, user_id, edit)
        state = {"notice": "Saved."}
    except Conflict as stale:
        state["conflict"] = stale.details.get("current", {})
        state["error"] = stale.message
    except InvalidInput as refused:
        state["error"] = refused.message
    return await _answer(request, ctx, viewer, org_id, user_id, state)


def _flag(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text)


@router.post("/{user_id}/update")
async def update(
    request: Request,
    user_id: int,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    role: Choice = "",
    paid: Choice = "",
    banned: Choice = "",
) -> Response:
    """Promote/demote, paid/unpaid, ban/unban: whichever field the button carried."""
    changes = membership.MemberChanges(
        Role(role) if role in {r.value for r in Role} else None, _flag(paid), _flag(banned)
    )
    try:
        await membership.update_member(ctx, viewer.principal, org_id, user_id, changes)
        state = {"notice": "Updated."}
    except (InvalidInput, Conflict) as refused:
        state = {"error": refused.message}
    return await _answer(request, ctx, viewer, org_id, user_id, state)


@router.post("/{user_id}/remove")
async def remove(
    request: Request, user_id: int, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg
) -> Response:
    try:
        await membership.remove_member(ctx, viewer.principal, org_id, user_id)
    except (InvalidInput, Conflict) as refused:
        return await users_page(request, ctx, viewer, org_id, 409, error=refused.message)
    return RedirectResponse(f"/org?org={org_id}", status_code=303)


@router.post("")
async def add(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    email: Text = "",
    role: Choice = "",
) -> Response:
    try:
        chosen = Role(role) if role in {r.value for r in Role} else Role.MEMBER
        added = await membership.add_member(ctx, viewer.principal, org_id, email.strip(), chosen)
    except (InvalidInput, Conflict) as refused:
        form = {"email": email, "role": role}
        return await users_page(request, ctx, viewer, org_id, 400, error=refused.message, form=form)
    notice = f"{added['email']} joined as {added['role']}."
    return await users_page(request, ctx, viewer, org_id, notice=notice)
