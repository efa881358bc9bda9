"""The process's providers, built once, for every adapter that calls a model (`/v1`, the
dashboard's chat and datasets, `/api/datasets`).

They are built at start-up when the database answers (a provider that cannot be configured then
stops the start), and otherwise on the first call that needs them, so a gateway started while
the database is down comes up, answers 503, and recovers by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from quartermaster.providers.registry import ProviderRegistry


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
