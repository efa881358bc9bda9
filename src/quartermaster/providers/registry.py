"""The providers of a process: one per enabled catalog model, built at start-up, closed at
shutdown.

Each catalog entry names a provider: `local` for the embedded models, or an upstream configured
under `[upstreams.NAME]` (`openai` is built in). Both kinds are made by a `ProviderFactory`, the
one extension point: tests and deployments add factories the same way the built-ins are added.
Every problem (an unknown upstream, a missing API key, a missing model wheel) stops start-up
with a `ProviderConfigError` that says what to change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import httpx

from quartermaster.providers import local_chat, local_embed, local_transcribe
from quartermaster.providers.base import Provider
from quartermaster.providers.config import LOCAL, UpstreamConfig, parse_upstreams
from quartermaster.providers.errors import ProviderConfigError
from quartermaster.providers.openai_http import OpenAIHTTPProvider


class ModelEntry(Protocol):
    """What the registry reads from a catalog entry (a `ModelSpec` or a catalog row)."""

    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def upstream_model(self) -> str: ...
    @property
    def enabled(self) -> bool: ...


class ProviderFactory(Protocol):
    def create(self, entry: ModelEntry) -> Provider: ...


@dataclass(frozen=True)
class LocalModel:
    provider: Callable[[str], Provider]
    files: Callable[[], Path]


LOCAL_MODELS = {
    local_chat.MODEL_NAME: LocalModel(local_chat.LocalChatProvider, local_chat.model_path),
    local_embed.MODEL_NAME: LocalModel(local_embed.LocalEmbedProvider, local_embed.model_files),
    local_transcribe.MODEL_NAME: LocalModel(
        local_transcribe.LocalTranscribeProvider, local_transcribe.model_directory
    ),
}


class LocalFactory:
    """The embedded models. Their files are checked now; the weights load on first use."""

    def create(self, entry: ModelEntry) -> Provider:
        model = LOCAL_MODELS.get(entry.upstream_model)
        if model is None:
            raise ProviderConfigError(
                f"model {entry.name}: the local provider has no model {entry.upstream_model!r}; "
                f"it has {sorted(LOCAL_MODELS)}"
            )
        model.files()
        return model.provider(entry.upstream_model)


@dataclass(frozen=True)
class HTTPFactory:
    """An OpenAI-compatible upstream; each model gets its own client and connection pool."""

    config: UpstreamConfig
    transport: httpx.AsyncBaseTransport | None = None

    def create(self, entry: ModelEntry) -> Provider:
        self.config.api_key()  # fails now, not at the first request, when the key is missing
        return OpenAIHTTPProvider(self.config, entry.upstream_model, transport=self.transport)


class ProviderRegistry:
    """Catalog model name → its provider."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(providers)

    def get(self, model: str) -> Provider:
        try:
            return self._providers[model]
        except KeyError:
            raise KeyError(
                f"no provider for model {model!r}; is it enabled in the catalog?"
            ) from None

    def __contains__(self, model: object) -> bool:
        return model in self._providers

    @property
    def models(self) -> list[str]:
        return sorted(self._providers)

    async def close(self) -> None:
        """Closes every provider, even when some fail to close."""
        providers, self._providers = list(self._providers.values()), {}
        await asyncio.gather(*(p.close() for p in providers), return_exceptions=True)

    async def __aenter__(self) -> ProviderRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def build_registry(
    models: Iterable[ModelEntry],
    upstreams: Mapping[str, UpstreamConfig] | None = None,
    *,
    factories: Mapping[str, ProviderFactory] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> ProviderRegistry:
    """A provider for every enabled model. `upstreams` defaults to the built-ins; `factories`
    add or replace providers by name; `transports` swap an upstream's HTTP transport (tests)."""
    configs = parse_upstreams({}) if upstreams is None else upstreams
    assert set(transports or {}) <= set(configs), "a transport for an unconfigured upstream"
    known: dict[str, ProviderFactory] = {LOCAL: LocalFactory()}
    known |= {name: HTTPFactory(c, (transports or {}).get(name)) for name, c in configs.items()}
    known |= dict(factories or {})
    providers: dict[str, Provider] = {}
    for entry in models:
        if not entry.enabled:
            continue
        factory = known.get(entry.provider)
        if factory is None:
            raise ProviderConfigError(
                f"model {entry.name} uses provider {entry.provider!r}, which is not configured: "
                f"add [upstreams.{entry.provider}] to the upstreams file, or use one of "
                f"{sorted(known)}"
            )
        providers[entry.name] = factory.create(entry)
    return ProviderRegistry(providers)
