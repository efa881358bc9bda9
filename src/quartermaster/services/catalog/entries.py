"""The model catalog: which models exist and the rates they are charged at.

Rates are edited only by an operator, with an audit event holding the before and after values.
An edit never rewrites history: every usage event stores the rates it was charged at, and a
pending hold keeps the rates it was quoted at until it settles.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.errors import InvalidInput, NotFound
from quartermaster.domain.principal import Principal, require_operator
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
    tools: bool = False
    """Takes tool (function) definitions and conversations that hold tool calls."""
    vision: bool = False
    """Takes image parts."""
    audio_input: bool = False
    """Takes audio parts."""
    logprobs: bool = False
    """Returns log probabilities."""
    max_choices: int = 1
    """The largest `n` (answers per request)."""
    image_tokens: int = 0
    """The most one image can cost in prompt tokens: held for an image given by URL, and the
    ceiling that scales OpenAI's tile formula for an image whose pixels are in the request."""
    prompt_margin_pct: int = 0
    """Added to the counted prompt before it is held, for upstreams whose tokenizer is not ours."""


CAPABILITIES = ("tools", "vision", "audio_input", "logprobs")
COUNTS = ("max_choices", "image_tokens", "prompt_margin_pct")


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
                    **_capabilities(raw),
                )
            )
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"model entry {index + 1} in the catalog file: {exc}") from exc
    return specs


def _capabilities(raw: dict[str, Any]) -> dict[str, Any]:
    flags = {flag: bool(raw.get(flag, False)) for flag in CAPABILITIES}
    return flags | {count: int(raw[count]) for count in COUNTS if count in raw}


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


EDITABLE = (
    "input_rate",
    "output_rate",
    "training_rate",
    "context_window",
    "max_output_tokens",
    "enabled",
    *CAPABILITIES,
    *COUNTS,
)


def spec_of(entry: ModelCatalogEntry) -> ModelSpec:
    return ModelSpec(
        name=entry.name,
        kind=ModelKind(entry.kind),
        provider=entry.provider,
        upstream_model=entry.upstream_model,
        input_rate=entry.input_rate,
        output_rate=entry.output_rate,
        training_rate=entry.training_rate,
        context_window=entry.context_window,
        max_output_tokens=entry.max_output_tokens,
        enabled=entry.enabled,
        **{name: getattr(entry, name) for name in (*CAPABILITIES, *COUNTS)},
    )


LARGEST = 2**31 - 1
"""The catalog's limits are 32-bit columns."""
LEAST = {"context_window": 1, "max_choices": 1}
MOST = {"max_choices": 128, "prompt_margin_pct": 1000}


def parse_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Validated values for the editable fields; anything else is refused by name."""
    parsed: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in EDITABLE:
            raise InvalidInput(
                f"{name} cannot be edited; editable: {', '.join(EDITABLE)}", param=name
            )
        if name.endswith("_rate"):
            parsed[name] = parse_rate(value, name)
        elif name == "enabled" or name in CAPABILITIES:
            if not isinstance(value, bool):
                raise InvalidInput(f"{name} must be true or false", param=name)
            parsed[name] = value
        elif (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (LEAST.get(name, 0) <= value <= MOST.get(name, LARGEST))
        ):
            least, most = LEAST.get(name, 0), MOST.get(name, LARGEST)
            raise InvalidInput(f"{name} must be a whole number from {least} to {most}", param=name)
        else:
            parsed[name] = value
    return parsed


async def list_models(ctx: Context) -> list[ModelSpec]:
    """Every catalogued model, enabled or not, by name."""
    async with ctx.uow.begin(write=False) as tx:
        entries = await tx.session.scalars(
            select(ModelCatalogEntry).order_by(ModelCatalogEntry.name)
        )
        return [spec_of(entry) for entry in entries]


async def update_model(ctx: Context, principal: Principal, name: str, **changes: Any) -> ModelSpec:
    """Change a model's rates, limits or enabled flag (operators only), audited before/after.

    Past usage keeps the rates it was charged at; holds already taken settle at their own.
    """
    require_operator(principal)
    parsed = parse_changes(changes)
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        entry = await tx.session.scalar(
            select(ModelCatalogEntry).where(ModelCatalogEntry.name == name)
        )
        if entry is None:
            raise NotFound(f"no model named {name!r}; `qm models list` shows them", param="model")
        changed = {key: value for key, value in parsed.items() if getattr(entry, key) != value}
        before = {key: _plain(getattr(entry, key)) for key in changed}
        for key, value in changed.items():
            setattr(entry, key, value)
        if changed:
            await audit.record(
                tx.session,
                audit.AuditEntry(
                    action="model.update",
                    actor_user_id=principal.user_id,
                    target_type="model",
                    target_id=name,
                    before=before,
                    after={key: _plain(value) for key, value in changed.items()},
                ),
                now,
            )
        await tx.commit()
        return spec_of(entry)


def _plain(value: Any) -> Any:
    """JSON-safe audit values: rates as exact decimal strings (the same on both databases)."""
    return format(value.normalize(), "f") if isinstance(value, Decimal) else value


async def enabled_model(session: AsyncSession, name: str) -> ModelCatalogEntry:
    """The enabled catalog entry called `name`, or NotFound pointing at /v1/models."""
    entry = await session.scalar(
        select(ModelCatalogEntry).where(
            ModelCatalogEntry.name == name, ModelCatalogEntry.enabled.is_(True)
        )
    )
    if entry is None:
        raise NotFound(
            f"the model {name!r} does not exist or is disabled; GET /v1/models lists the others",
            param="model",
            code="model_not_found",
        )
    return entry
