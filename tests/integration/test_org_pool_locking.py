"""An admin's write that locks the org's month must not block other transactions from writing
audit events about the org: the audit chain's lock is taken after the org lock by one and
before the event's foreign key check by the other, so a FOR UPDATE there deadlocked under load
(found by bench/soak.py)."""

from __future__ import annotations

import asyncio

import pytest

from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.enterprise import org_pool
from tests.integration.ledger_fixtures import add_member


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_audit_event_about_a_locked_org_is_not_blocked_by_the_lock(ctx: Context) -> None:
    member = await add_member(ctx)
    entry = audit.AuditEntry("dataset.upload", member.user_id, member.org_id)
    async with ctx.uow.begin() as admin:
        await org_pool.get_org(admin.session, member.org_id, lock=True)

        async def upload_event() -> None:
            async with ctx.uow.begin() as upload:
                await audit.record(upload.session, entry, ctx.clock.now())
                await upload.commit()

        await asyncio.wait_for(upload_event(), timeout=10)
        await audit.record(admin.session, entry, ctx.clock.now())
        await admin.commit()
