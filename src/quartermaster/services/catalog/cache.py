"""A per-process copy of the enabled catalog, for checks a metered call makes before it reserves
(model kind, limits, tokenizer). It is refreshed every few seconds, and at once when a name is
missing, so a newly enabled model works immediately. Charging never reads it: the reserve reads
the model and its rates from the database in its own transaction, so a model disabled or
re-priced a moment ago is refused or charged correctly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from quartermaster.domain.errors import NotFound
from quartermaster.services.catalog import entries
from quartermaster.services.context import Context

REFRESH_S = 5.0


@dataclass
class _Snapshot:
    specs: dict[str, entries.ModelSpec] = field(default_factory=dict)
    loaded_at: float = float("-inf")


async def _refresh(ctx: Context, snapshot: _Snapshot) -> None:
    specs = await entries.list_models(ctx)
    snapshot.specs = {spec.name: spec for spec in specs if spec.enabled}
    snapshot.loaded_at = time.monotonic()


async def enabled_spec(ctx: Context, name: str) -> entries.ModelSpec:
    """The enabled model `name` as of a few seconds ago at most, or NotFound."""
    snapshot = ctx.memory.part(_Snapshot)
    stale = time.monotonic() - snapshot.loaded_at > REFRESH_S
    if stale or name not in snapshot.specs:
        await _refresh(ctx, snapshot)
    spec = snapshot.specs.get(name)
    if spec is None:
        raise NotFound(
            f"the model {name!r} does not exist or is disabled; GET /v1/models lists the others",
            param="model",
            code="model_not_found",
        )
    return spec
