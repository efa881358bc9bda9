"""A chat's prompt counted exactly as its hold counts it, without holding anything: Anthropic's
`count_tokens`, which is free. The caller still needs a valid key, and may count only for a
chat model served here and open to them (their org's list or their plan).

The count is what providers/prompt_count.py gives with the model's own tokenizer (the embedded
model's, else the upstream's encoding). The model's prompt margin is not in it: the margin pads
the hold for upstreams that count with another tokenizer; it is not part of the prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from quartermaster.domain.errors import InvalidInput, NotFound
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import ModelKind
from quartermaster.providers import prompt_count
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.services.catalog import cache
from quartermaster.services.context import Context
from quartermaster.services.identity import known_keys
from quartermaster.services.ledger import model_rules


async def count(
    ctx: Context,
    providers: ProviderRegistry,
    caller: Principal | known_keys.Remembered,
    body: Mapping[str, Any],
) -> int:
    """The prompt tokens of `body`, an OpenAI chat body."""
    principal = await known_keys.confirm(ctx, caller)
    entry = await cache.enabled_spec(ctx, body["model"])
    if entry.kind is not ModelKind.CHAT:
        raise InvalidInput(f"{entry.name} is an {entry.kind.value} model", param="model")
    if entry.name not in providers:
        raise NotFound(
            f"the model {entry.name!r} is not served by this gateway",
            param="model",
            code="model_not_found",
        )
    async with ctx.uow.begin(write=False) as tx:
        await model_rules.require_allowed_for_user(tx.session, principal.uid, entry.name)
    bounds = prompt_count.MediaBounds(entry.image_tokens, entry.context_window)
    own = providers.get(entry.name).tokenizer()
    if own is None:
        tokenizer = tokenizer_for_model(entry.upstream_model)
        return prompt_count.count_prompt(tokenizer, body, bounds).total
    # The embedded model's tokenizer loads the model on first use: not on the event loop.
    return (await asyncio.to_thread(prompt_count.count_prompt, own, body, bounds)).total
