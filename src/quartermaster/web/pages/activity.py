"""The activity log page: changes, sign-ins and metered calls, newest first, filtered by member,
action and dates (in the org's time zone), paged by cursor, with the CSV export of the range."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from quartermaster.domain.activity import ActivityQuery, decode_cursor, parse_moment
from quartermaster.http.deps import Ctx
from quartermaster.services.enterprise import org_summary
from quartermaster.services.metrics import activity
from quartermaster.web import activity_text
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn

router = APIRouter(prefix="/org/activity", include_in_schema=False)
PAGE_SIZE = 50
ACTIONS = (
    ("", "Everything"),
    ("member", "Members added, changed, removed"),
    ("allocation", "Allocations"),
    ("token_request", "Token requests"),
    ("purchase", "Purchases"),
    ("org", "Organization settings"),
    ("api_key", "API keys"),
    ("mfa", "Two-factor authentication"),
    ("cac", "CAC certificates"),
    ("dataset", "Datasets"),
    ("signin", "Sign-ins"),
    ("usage", "Metered calls"),
    ("usage.inference", "Metered calls: inference"),
    ("usage.training", "Metered calls: training"),
)
Filter = Annotated[str, Query(max_length=64)]


def _shown(entry: dict[str, Any], people: activity_text.People) -> dict[str, Any]:
    """The entry with who acted and, for a change, what it says, in words."""
    lines = activity_text.audit_lines(entry, people) if entry["source"] == "audit" else []
    return entry | {"who": activity_text.who(entry, people), "lines": lines}


@router.get("")
async def log(
    request: Request,
    ctx: Ctx,
    viewer: SignedIn,
    org_id: ManagedOrg,
    user_id: Filter = "",
    action: Filter = "",
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: Annotated[str, Query(alias="to", max_length=40)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    org = await org_summary.summary(ctx, viewer.principal, org_id)
    tz = org["timezone"]
    query = ActivityQuery(
        int(user_id) if user_id.isdigit() else None,
        action or None,
        parse_moment(since, tz, end=False, param="from"),
        parse_moment(until, tz, end=True, param="to"),
        PAGE_SIZE,
        decode_cursor(cursor) if cursor else None,
    )
    found = await activity.page(ctx, viewer.principal, org_id, query)
    filters = {"org": org_id, "user_id": user_id, "action": action, "from": since, "to": until}
    kept = {k: v for k, v in filters.items() if v != ""}
    export = {k: v for k, v in (("from", since), ("to", until)) if v}
    context = {
        "active": "activity",
        "tab": "activity",
        "org": org,
        "entries": [_shown(entry, found["people"]) for entry in found["entries"]],
        "filters": filters,
        "actions": ACTIONS,
        "first_href": "/org/activity?" + urlencode(kept),
        "next_href": "/org/activity?" + urlencode(kept | {"cursor": found["next_cursor"]})
        if found["next_cursor"]
        else None,
        "export_href": f"/api/orgs/{org_id}/exports/activity.csv?{urlencode(export)}",
        "paged": bool(cursor),
    }
    return page(request, "activity.html", context)
