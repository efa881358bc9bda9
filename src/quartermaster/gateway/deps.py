"""What /v1 routes share: the process's providers, built once; the metered routes' caller.

They are built at start-up when the database answers (a provider that cannot be configured then
stops the start), and otherwise on the first call that needs them, so a gateway started while
the database is down comes up, answers 503, and recovers by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from quartermaster.api.deps import bearer_token, context, principal
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services import known_keys
from quartermaster.services.metering import MeteredCaller


class LazyProviders:
    def __init__(self, build: Callable[[], Awaitable[ProviderRegistry]]) -> None:
        self._build = build
        self._registry: ProviderRegistry | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> ProviderRegistry:
        if self._registry is None:
            async with self._lock:
                if self._registry is None:
                    self._registry = await self._build()
        return self._registry

    async def close(self) -> None:
        if self._registry is not None:
            await self._registry.close()


async def providers(request: Request) -> ProviderRegistry:
    lazy: LazyProviders = request.app.state.providers
    return await lazy.get()


Providers = Annotated[ProviderRegistry, Depends(providers)]


async def metered_caller(request: Request) -> MeteredCaller:
    """Chats and embeddings: an API key from memory when this process checked it a moment ago
    (the hold's statement checks it again: services/known_keys.py); a session as everywhere."""
    token = bearer_token(request)
    if token is None:
        return await principal(request)
    return await known_keys.recall(context(request), token)


MeteredCallerDep = Annotated[MeteredCaller, Depends(metered_caller)]
