"""Which models a user may use. An org that lists none may use every enabled model; once it
lists any, only those. Individuals get what their plan allows. Enforced in /v1/models and in
every metered call."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import PermissionDenied
from quartermaster.services import plans
from quartermaster.services.identity import authz
from quartermaster.services.ledger.spending import Standing, standing_of
from quartermaster.store.models import ModelCatalogEntry, OrgModel


async def allowed_names(session: AsyncSession, org_id: int) -> set[str] | None:
    """The org's allow-list, or None when it allows every enabled model."""
    rows = await session.scalars(
        select(ModelCatalogEntry.name)
        .join(OrgModel, OrgModel.model_id == ModelCatalogEntry.id)
        .where(OrgModel.org_id == org_id)
    )
    names = set(rows)
    return names or None


def org_allows(
    org_id: int | ColumnElement[int], model_id: ColumnElement[int]
) -> ColumnElement[bool]:
    """The org's rule as SQL (the reserve evaluates it in its own statement): no list allows
    every model, a list allows only what it names."""
    listed = select(OrgModel.model_id).where(OrgModel.org_id == org_id)
    return or_(~listed.exists(), model_id.in_(listed))


async def allowed_for_user(session: AsyncSession, user_id: int) -> set[str] | None:
    """The org's list for members; the plan's list for individuals; None: every model."""
    membership = await authz.active_membership(session, user_id)
    if membership is not None:
        return await allowed_names(session, membership.org_id)
    return await _plan_allows(session, user_id)


async def _plan_allows(session: AsyncSession, user_id: int) -> set[str] | None:
    found = await plans.current(session, user_id)
    if found is None or found[0].models_allowed is None:
        return None
    return set(found[0].models_allowed)


async def require_allowed(
    session: AsyncSession, standing: Standing, model: str, param: str = "model"
) -> None:
    """Refuse a model outside the org's list or the individual's plan (the reserve checks every
    call; datasets check their embedding model, named by `param`, when they are made)."""
    if standing.org_id is not None:
        named = select(ModelCatalogEntry.id).where(ModelCatalogEntry.name == model)
        allows = await session.scalar(select(org_allows(standing.org_id, named.scalar_subquery())))
    else:
        allowed = await _plan_allows(session, standing.user_id)
        allows = allowed is None or model in allowed
    if not allows:
        raise PermissionDenied(
            f"the model {model} is not open to you (your organization's list or your plan); "
            "GET /v1/models lists the ones that are",
            param=param,
            code="model_not_allowed",
        )


async def require_allowed_for_user(
    session: AsyncSession, user_id: int, model: str, param: str = "model"
) -> None:
    await require_allowed(session, await standing_of(session, user_id), model, param)
