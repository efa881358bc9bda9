"""Booking usage moves the event, the counter and the roll-up (one per route) together."""

import uuid
from decimal import Decimal

from sqlalchemy import func, select

from quartermaster.domain.routes import Route
from quartermaster.domain.types import TokenKind
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.store.models import ModelCatalogEntry, UsageCounter, UsageEvent, UsageMonthly


async def test_events_counters_and_rollups_agree(ctx: Context) -> None:
    user = await register(ctx, Registration("meter@example.com", "violet-anchor-99", "", True))
    async with ctx.uow.begin() as tx:
        model_id = await tx.session.scalar(
            select(ModelCatalogEntry.id).where(ModelCatalogEntry.kind == "chat")
        )
        assert model_id is not None
        for tokens, route in ((100, Route.CHAT), (250, Route.MESSAGES), (7, Route.CHAT)):
            usage = ledger.Usage(
                str(uuid.uuid4()),
                user,
                None,
                model_id,
                "2026-11",
                TokenKind.INFERENCE,
                tokens,
                0,
                tokens,
                Decimal(1),
                Decimal(1),
                route,
            )
            await ledger.book(tx.session, usage, ctx.clock.now())
        await tx.commit()
    async with ctx.uow.begin(write=False) as tx:
        events = await tx.session.scalar(select(func.sum(UsageEvent.tokens)))
        counter = await tx.session.scalar(select(UsageCounter.used))
        rollup = await tx.session.scalar(select(func.sum(UsageMonthly.tokens)))
        requests = await tx.session.scalar(select(func.sum(UsageMonthly.requests)))
        rows = await tx.session.execute(select(UsageMonthly.route, UsageMonthly.tokens))
        by_route = dict(rows.all())
    assert events == counter == rollup == 357
    assert requests == 3
    assert by_route == {"chat.completions": 107, "messages": 250}
