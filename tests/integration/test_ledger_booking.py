"""Booking usage moves the event, the counter and the roll-up together."""

import uuid
from decimal import Decimal

from sqlalchemy import func, select

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
        for tokens in (100, 250, 7):
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
            )
            await ledger.book(tx.session, usage, ctx.clock.now())
        await tx.commit()
    async with ctx.uow.begin(write=False) as tx:
        events = await tx.session.scalar(select(func.sum(UsageEvent.tokens)))
        counter = await tx.session.scalar(select(UsageCounter.used))
        rollup = await tx.session.scalar(select(func.sum(UsageMonthly.tokens)))
        requests = await tx.session.scalar(select(func.sum(UsageMonthly.requests)))
    assert events == counter == rollup == 357
    assert requests == 3
