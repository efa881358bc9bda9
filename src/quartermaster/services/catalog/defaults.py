"""What a new installation starts with: the model catalog and the individual plans, each read
from a file in the package. Adding what is missing is all it does; edits are never undone."""

from __future__ import annotations

from quartermaster.domain.types import ModelKind
from quartermaster.services import plans
from quartermaster.services.catalog import entries
from quartermaster.services.context import Context


async def seed(ctx: Context) -> dict[str, list[str]]:
    """Add missing catalog models and plans; returns the names added."""
    models = await entries.seed(ctx, entries.default_specs())
    added_plans = await plans.seed(ctx, plans.default_terms())
    return {"models_added": models, "plans_added": added_plans}


def chat_model() -> str:
    """The first chat model a new installation starts with: the offline one `make run` serves."""
    return next(spec.name for spec in entries.default_specs() if spec.kind is ModelKind.CHAT)
