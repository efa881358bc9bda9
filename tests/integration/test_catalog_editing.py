"""Operators edit rates; the edit is audited and never rewrites what was already charged."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from quartermaster.domain.errors import InvalidInput, NotFound, PermissionDenied
from quartermaster.domain.principal import Principal
from quartermaster.services import catalog, ledger
from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent, UsageEvent
from tests.integration.ledger_fixtures import CHAT, add_member

OPERATOR = Principal.command_line()


async def test_a_rate_edit_is_audited_and_past_charges_keep_their_rates(ctx: Context) -> None:
    member = await add_member(ctx)
    await ledger.reserve(ctx, member.user_id, CHAT, 10, 10, "before-edit")
    await ledger.settle(ctx, "before-edit", 10, 10)
    spec = await catalog.update_model(ctx, OPERATOR, CHAT, output_rate="2.5", enabled=True)
    assert spec.output_rate == Decimal("2.5")
    assert {m.name: m.output_rate for m in await catalog.list_models(ctx)}[CHAT] == Decimal("2.5")
    async with ctx.uow.begin(write=False) as tx:
        event = await tx.session.scalar(select(UsageEvent))
        audit = await tx.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "model.update")
        )
    assert event is not None
    assert (event.tokens, event.output_rate) == (20, Decimal(1))
    assert audit is not None
    assert (audit.before, audit.after) == ({"output_rate": "1"}, {"output_rate": "2.5"})


async def test_only_operators_edit_and_bad_values_are_refused(ctx: Context) -> None:
    member = Principal(user_id=None, is_operator=False, mfa_verified=True, via="session")
    with pytest.raises(PermissionDenied):
        await catalog.update_model(ctx, member, CHAT, input_rate="0")
    for changes in ({"input_rate": "-1"}, {"max_output_tokens": -5}, {"provider": "x"}):
        with pytest.raises(InvalidInput):
            await catalog.update_model(ctx, OPERATOR, CHAT, **changes)
    with pytest.raises(NotFound):
        await catalog.update_model(ctx, OPERATOR, "no-such-model", enabled=False)
