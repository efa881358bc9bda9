"""What a caller is offered: the models they may use here, and what a text costs on one of them
(the reference's tokenizer endpoint), counted offline as the gateway counts a prompt."""

from __future__ import annotations

from quartermaster.domain.principal import Principal
from quartermaster.domain.rates import inference_charge, training_charge
from quartermaster.domain.types import ModelKind
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.ledger import model_rules


async def models_for(
    ctx: Context, providers: ProviderRegistry, principal: Principal
) -> list[catalog.ModelSpec]:
    """The models this caller may use: enabled, served here, and allowed for their org."""
    async with ctx.uow.begin(write=False) as tx:
        allowed = await model_rules.allowed_for_user(tx.session, principal.uid)
    return [
        spec
        for spec in await catalog.list_models(ctx)
        if spec.enabled and spec.name in providers and (allowed is None or spec.name in allowed)
    ]


async def count_tokens(ctx: Context, principal: Principal, model: str, text: str) -> dict[str, int]:
    """Tokens of `text` for `model`, in the model's tokens and in platform tokens, with the
    worst-case charge of a chat call that sends it (the reference's tokenizer endpoint)."""
    async with ctx.uow.begin(write=False) as tx:
        entry = await catalog.enabled_model(tx.session, model)
    tokens = tokenizer_for_model(entry.upstream_model).count(text)
    if ModelKind(entry.kind).trains:
        platform = training_charge(tokens, entry.training_rate)
        return {
            "tokens": tokens,
            "platform_tokens": platform,
            "worst_case_platform_tokens": platform,
        }
    prompt = inference_charge(tokens, 0, entry.input_rate, entry.output_rate)
    worst = inference_charge(tokens, entry.max_output_tokens, entry.input_rate, entry.output_rate)
    return {
        "tokens": tokens,
        "platform_tokens": prompt,
        "max_completion_tokens": entry.max_output_tokens,
        "worst_case_platform_tokens": worst,
    }
