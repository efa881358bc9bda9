"""Account metrics under /api/orgs/{org_id}: the user table with usage, token statistics, the
activity log and the CSV exports. For the org's admins (MFA verified) and operators; the admin
check runs before any parameter is read, as on every org route."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from quartermaster.api.orgs import org_admin
from quartermaster.domain.activity import ActivityQuery, decode_cursor, parse_moment
from quartermaster.domain.member_table import MemberColumn, MemberQuery, MemberStatus
from quartermaster.domain.types import Role
from quartermaster.http.deps import Caller, Ctx
from quartermaster.services.enterprise.org_pool import get_org
from quartermaster.services.metrics import activity, exports, member_stats, token_stats

router = APIRouter(prefix="/api/orgs/{org_id}", tags=["metrics"], dependencies=[Depends(org_admin)])
From = Annotated[str | None, Query(alias="from", description="A date (org's zone) or datetime.")]
To = Annotated[str | None, Query(alias="to", description="Inclusive date, or exclusive datetime.")]


@router.get("/member-stats")
async def members(
    org_id: int,
    ctx: Ctx,
    caller: Caller,
    sort: MemberColumn = MemberColumn.USER_ID,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    email: str | None = None,
    role: Role | None = None,
    status: MemberStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """The user table with usage: sortable by any column, filtered, paged; `total` matches."""
    query = MemberQuery(sort, order == "desc", email, role, status, limit, offset)
    return await member_stats.member_stats(ctx, caller, org_id, query)


@router.get("/token-stats")
async def statistics(
    org_id: int, ctx: Ctx, caller: Caller, model_period: str | None = None
) -> dict[str, Any]:
    """Usage by month and year (inference, training, requests), by model and by route (all
    time, or in `model_period`), and the projection of this month's end from its burn rate so
    far."""
    return await token_stats.org_statistics(ctx, caller, org_id, model_period)


@router.get("/activity")
async def activity_log(
    org_id: int,
    ctx: Ctx,
    caller: Caller,
    since: From = None,
    until: To = None,
    user_id: int | None = None,
    action: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Changes, sign-ins and metered calls, newest first; pass `next_cursor` for the next page.
    `action` is an audit action (or its prefix, e.g. `member`), `signin`, `usage`,
    `usage.inference` or `usage.training`."""
    timezone = await _timezone(ctx, org_id)
    query = ActivityQuery(
        user_id,
        action,
        parse_moment(since, timezone, end=False, param="from"),
        parse_moment(until, timezone, end=True, param="to"),
        limit,
        decode_cursor(cursor) if cursor else None,
    )
    return await activity.page(ctx, caller, org_id, query)


async def _timezone(ctx: Ctx, org_id: int) -> str:
    async with ctx.uow.begin(write=False) as tx:
        return (await get_org(tx.session, org_id)).timezone


def _csv(export: exports.Export) -> StreamingResponse:
    disposition = f'attachment; filename="{export.filename}"'
    return StreamingResponse(
        exports.csv_chunks(export),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


@router.get("/exports/token-usage.csv")
async def export_token_usage(org_id: int, ctx: Ctx, caller: Caller) -> StreamingResponse:
    """Every month: period, inference_tokens, embedding_tokens, total_tokens."""
    return _csv(await exports.token_usage(ctx, caller, org_id))


@router.get("/exports/users.csv")
async def export_users(org_id: int, ctx: Ctx, caller: Caller) -> StreamingResponse:
    return _csv(await exports.users(ctx, caller, org_id))


@router.get("/exports/users-tokens.csv")
async def export_users_tokens(org_id: int, ctx: Ctx, caller: Caller) -> StreamingResponse:
    """The users with their caps and usage columns."""
    return _csv(await exports.users_with_tokens(ctx, caller, org_id))


@router.get("/exports/activity.csv")
async def export_activity(
    org_id: int, ctx: Ctx, caller: Caller, since: From = None, until: To = None
) -> StreamingResponse:
    return _csv(await exports.activity_log(ctx, caller, org_id, since, until))
