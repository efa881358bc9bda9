"""Manage your organization → Users: the summary cards, the user table with usage (sortable,
filterable, paged) and the CSV exports. Changes to members live in `org_members`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quartermaster.domain.member_table import MemberColumn, MemberQuery, MemberStatus
from quartermaster.domain.types import Role
from quartermaster.http.deps import Ctx
from quartermaster.services.context import Context
from quartermaster.services.enterprise import org_summary
from quartermaster.services.metrics import member_stats
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn, Viewer

router = APIRouter(prefix="/org", include_in_schema=False)
PAGE_SIZE = 25
COLUMNS = (
    ("ID", MemberColumn.USER_ID),
    ("Email", MemberColumn.EMAIL),
    ("MFA", MemberColumn.MFA),
    ("CAC", MemberColumn.CAC),
    ("Role", MemberColumn.ROLE),
    ("Paid", MemberColumn.PAID),
    ("Banned", MemberColumn.BANNED),
    ("Max tokens", MemberColumn.MAX_INFERENCE),
    ("Max train tokens", MemberColumn.MAX_TRAINING),
    ("Total usage", MemberColumn.TOTAL),
    ("Monthly inference", MemberColumn.INFERENCE_THIS_MONTH),
    ("Prev month inference", MemberColumn.INFERENCE_PREVIOUS_MONTH),
    ("Monthly training", MemberColumn.TRAINING_THIS_MONTH),
)
EXPORTS = (
    ("token-usage.csv", "Export token usage"),
    ("users.csv", "Export users"),
    ("users-tokens.csv", "Export users with tokens"),
)


def _choice(kind: Any, text: str | None) -> Any:
    """An enum member from a query value, or None for an empty or unknown one."""
    return kind(text) if text in {item.value for item in kind} else None


@dataclass(frozen=True)
class TableView:
    """The user table's sort, filters and page, as read from and written to the address."""

    org_id: int
    sort: MemberColumn = MemberColumn.USER_ID
    descending: bool = False
    email: str = ""
    role: Role | None = None
    status: MemberStatus | None = None
    page: int = 1

    @classmethod
    def from_params(cls, org_id: int, params: Mapping[str, str]) -> TableView:
        number = params.get("page", "1")
        return cls(
            org_id,
            _choice(MemberColumn, params.get("sort")) or MemberColumn.USER_ID,
            params.get("order") == "desc",
            params.get("email", "")[:320],
            _choice(Role, params.get("role")),
            _choice(MemberStatus, params.get("status")),
            int(number) if number.isdigit() and 0 < int(number) < 10**6 else 1,
        )

    def query(self) -> MemberQuery:
        offset = (self.page - 1) * PAGE_SIZE
        filters = (self.email or None, self.role, self.status)
        return MemberQuery(self.sort, self.descending, *filters, PAGE_SIZE, offset)

    def href(self, **changes: Any) -> str:
        view = replace(self, **changes)
        params = {"org": view.org_id, "sort": view.sort.value, "page": view.page}
        params |= {"order": "desc" if view.descending else "asc", "email": view.email}
        params |= {"role": view.role.value if view.role else ""}
        params |= {"status": view.status.value if view.status else ""}
        return "/org?" + urlencode({k: v for k, v in params.items() if v != ""})

    def sort_href(self, column: MemberColumn) -> str:
        flip = column is self.sort and not self.descending
        return self.href(sort=column, descending=flip, page=1)


async def member_row(ctx: Context, viewer: Viewer, org_id: int, user_id: int) -> dict[str, Any]:
    """One member's row of the table (keyset paging from just before their id), or {} when
    they are no longer a member."""
    query = MemberQuery(limit=1, after_user_id=user_id - 1)
    found = await member_stats.member_stats(ctx, viewer.principal, org_id, query)
    rows = [row for row in found["members"] if row["user_id"] == user_id]
    return rows[0] if rows else {}


async def users_page(
    request: Request, ctx: Context, viewer: Viewer, org_id: int, status: int = 200, **extra: Any
) -> Response:
    """The whole Users page; `extra` carries messages and per-row states (`rows_state`)."""
    view = TableView.from_params(org_id, request.query_params)
    table = await member_stats.member_stats(ctx, viewer.principal, org_id, view.query())
    pages = max(1, -(-table["total"] // PAGE_SIZE))
    context = {
        "active": "org",
        "tab": "users",
        "org": await org_summary.summary(ctx, viewer.principal, org_id),
        "table": table,
        "view": view,
        "pages": pages,
        "columns": COLUMNS,
        "exports": EXPORTS,
        "roles": list(Role),
        "statuses": list(MemberStatus),
        "rows_state": {},
        **extra,
    }
    return page(request, "org.html", context, status)


@router.get("")
async def users(request: Request, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg) -> Response:
    return await users_page(request, ctx, viewer, org_id)
