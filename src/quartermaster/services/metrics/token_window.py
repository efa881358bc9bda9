"""The token/subscription window a user watches: where their caps come from (their org's
allocation or their plan), what they used this month, what is left, when it resets, and the
refills they bought."""

from __future__ import annotations

from sqlalchemy import select

from quartermaster.domain.errors import PermissionDenied
from quartermaster.domain.periods import period_end, period_of
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import TokenKind
from quartermaster.services import plans as plan_catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import spending
from quartermaster.services.metrics import token_stats
from quartermaster.store.models import Refill


async def window(ctx: Context, principal: Principal) -> dict[str, object]:
    """The token/subscription window: plan, caps, used, left, reset date, refill history."""
    now = ctx.clock.now()
    async with ctx.uow.begin(write=False) as tx:
        session = tx.session
        standing = await spending.standing_of(session, principal.uid)
        period = period_of(now, standing.timezone)
        found = None if standing.org_id else await plan_catalog.current(session, principal.uid)
        used = await token_stats.counters(session, principal.uid, period)
        kinds: dict[str, object] = {}
        unpaid = None
        for kind in TokenKind:
            try:
                cap = await spending.cap_of(session, standing, kind, period)
            except PermissionDenied as refusal:
                cap, unpaid = None, refusal.message
            spent = used.get(kind.value, (0, 0))[0]
            left = None if cap is None else max(0, cap - spent)
            kinds[kind.value] = {"cap": cap, "used": spent, "left": left}
        history = await session.scalars(
            select(Refill).where(Refill.user_id == principal.uid).order_by(Refill.id.desc())
        )
        refills = [
            {
                "period": r.period,
                "kind": r.kind,
                "tokens": r.tokens,
                "price": str(r.price),
                "currency": r.currency,
                "at": r.created_at.isoformat(),
            }
            for r in history
        ]
    return {
        "source": "enterprise" if standing.org_id else "plan",
        "org_id": standing.org_id,
        "plan": found[0].name if found else None,
        "term": found[1] if found else None,
        "period": period,
        "resets_at": period_end(period, standing.timezone).isoformat(),
        "unpaid": unpaid,
        "tokens": kinds,
        "refills": refills,
    }
