"""Where an org's metrics pages and exports read, and the permission check before them.

With `QM_DATABASE_REPLICA_URL` set, the pages' queries run on the hot standby, so a busy
dashboard or a long export takes no work from the primary that meters calls; the standby may
be a moment behind (its replay lag), and the pages show what it has. Who may read is always
checked on the primary, so an admin removed a moment ago is refused at once, whatever the lag.
Without a replica, the check and the reads share one transaction on the primary, as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import authz


@asynccontextmanager
async def admin_report(
    ctx: Context, principal: Principal, org_id: int
) -> AsyncIterator[AsyncSession]:
    """A read session for `org_id`'s metrics, once `principal` is known to administer it."""
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        if ctx.reports is None:
            yield tx.session
            return
    async with ctx.reports.begin(write=False) as replica:
        yield replica.session
