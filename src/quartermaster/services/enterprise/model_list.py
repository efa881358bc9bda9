"""An org admin's list of the models their members may use (none listed: every enabled model).
The rule that enforces it on every call is in services/ledger/model_rules.py."""

from __future__ import annotations

from sqlalchemy import delete, select

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.principal import Principal
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.services.identity import authz
from quartermaster.services.ledger.model_rules import allowed_names
from quartermaster.store.models import ModelCatalogEntry, OrgModel


async def get(ctx: Context, principal: Principal, org_id: int) -> list[str] | None:
    async with ctx.uow.begin(write=False) as tx:
        await authz.require_org_admin(tx.session, principal, org_id)
        allowed = await allowed_names(tx.session, org_id)
    return None if allowed is None else sorted(allowed)


async def set_allowed(
    ctx: Context, principal: Principal, org_id: int, names: list[str] | None
) -> list[str] | None:
    """Replace the allow-list (None or [] allows every enabled model); audited before/after."""
    async with ctx.uow.begin() as tx:
        session = tx.session
        await authz.require_org_admin(session, principal, org_id)
        wanted = sorted(set(names or []))
        rows = await session.execute(
            select(ModelCatalogEntry.name, ModelCatalogEntry.id).where(
                ModelCatalogEntry.name.in_(wanted)
            )
        )
        found: dict[str, int] = {row.name: row.id for row in rows}
        unknown = [name for name in wanted if name not in found]
        if unknown:
            raise InvalidInput(
                f"no such models in the catalog: {', '.join(unknown)}", param="models"
            )
        before = await allowed_names(session, org_id)
        await session.execute(delete(OrgModel).where(OrgModel.org_id == org_id))
        session.add_all(OrgModel(org_id=org_id, model_id=found[name]) for name in wanted)
        entry = audit.AuditEntry(
            "org.models.set",
            principal.user_id,
            org_id,
            "organization",
            org_id,
            before={"models": sorted(before) if before else None},
            after={"models": wanted or None},
        )
        await audit.record(session, entry, ctx.clock.now())
        await tx.commit()
    return wanted or None
