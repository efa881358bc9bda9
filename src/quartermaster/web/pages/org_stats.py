"""Token statistics: usage by year and month, inference against embedding (chart), the
breakdowns by model and by route (all time or one month) and the projection of this month's
end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quartermaster.http.deps import Ctx
from quartermaster.services.metrics import token_stats
from quartermaster.web.org_scope import ManagedOrg
from quartermaster.web.render import page
from quartermaster.web.session import SignedIn

router = APIRouter(prefix="/org/stats", include_in_schema=False)


@router.get("")
async def statistics(
    request: Request, ctx: Ctx, viewer: SignedIn, org_id: ManagedOrg, model_period: str = ""
) -> Response:
    chosen = model_period[:7] or None
    stats = await token_stats.org_statistics(ctx, viewer.principal, org_id, chosen)
    context = {"active": "stats", "tab": "stats", "org": stats, "stats": stats}
    return page(request, "org_stats.html", context)
