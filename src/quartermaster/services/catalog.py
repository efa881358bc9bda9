"""The model catalog: which models exist and the rates they are charged at."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from typing import Any

from sqlalchemy import select

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.rates import parse_rate
from quartermaster.domain.types import ModelKind
from quartermaster.services import audit
from quartermaster.services.context import Context
from quartermaster.store.models import ModelCatalogEntry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: ModelKind
    provider: str
    upstream_model: str
    input_rate: Decimal = Decimal(0)
    output_rate: Decimal = Decimal(0)
    training_rate: Decimal = Decimal(0)
    context_window: int = 8192
    max_output_tokens: int = 1024
    enabled: bool = True


def parse_specs(document: dict[str, Any]) -> list[ModelSpec]:
    """Model specs from a parsed TOML document, with rates read as exact decimals."""
    specs = []
    for index, raw in enumerate(document.get("models", [])):
        try:
            kind = ModelKind(raw["kind"])
            specs.append(
                ModelSpec(
                    name=raw["name"],
                    kind=kind,
                    provider=raw["provider"],
                    upstream_model=raw.get("upstream_model", raw["name"]),
                    input_rate=parse_rate(raw.get("input_rate", "0"), "input_rate"),
                    output_rate=parse_rate(raw.get("output_rate", "0"), "output_rate"),
                    training_rate=parse_rate(raw.get("training_rate", "0"), "training_rate"),
                    context_window=int(raw.get("context_window", 8192)),
                    max_output_tokens=int(raw.get("max_output_tokens", 1024)),
                    enabled=bool(raw.get("enabled", True)),
                )
            )
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"model entry {index + 1} in the catalog file: {exc}") from exc
    return specs


def default_specs() -> list[ModelSpec]:
    text = files("quartermaster.data").joinpath("models.toml").read_text()
    return parse_specs(tomllib.loads(text))


async def seed(ctx: Context, specs: list[ModelSpec]) -> list[str]:
    """Add the models that are missing by name; returns the names added. Never overwrites."""
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        existing = set(await tx.session.scalars(select(ModelCatalogEntry.name)))
        added = [spec for spec in specs if spec.name not in existing]
        for spec in added:
            tx.session.add(ModelCatalogEntry(**vars(spec), created_at=now))
            await audit.record(
                tx.session,
                audit.AuditEntry(
                    action="model.seed",
                    target_type="model",
                    target_id=spec.name,
                    after={"kind": spec.kind.value, "provider": spec.provider},
                ),
                now,
            )
        await tx.commit()
    return [spec.name for spec in added]
