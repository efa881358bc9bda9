"""Readiness: can this process reach its database right now?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from quartermaster.domain.errors import ServiceUnavailable
from quartermaster.services.context import Context
from quartermaster.store.migrate import current_revision, head_revision


async def check(ctx: Context) -> dict[str, str]:
    """The database's state, or ServiceUnavailable saying what is wrong (never the URL)."""
    try:
        async with ctx.uow.begin(write=False) as tx:
            await tx.session.execute(text("SELECT 1"))
        revision = await current_revision(ctx.uow.engine)
    except (SQLAlchemyError, OSError) as exc:
        raise ServiceUnavailable(
            f"database unreachable ({type(exc).__name__})", code="database_unavailable"
        ) from None
    if revision != head_revision():
        raise ServiceUnavailable(
            "database schema is not current; run `qm init`", code="schema_outdated"
        )
    return {"status": "ok", "database": "ok", "schema": revision}
