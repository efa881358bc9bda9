"""Upstream configuration: where each OpenAI-compatible upstream lives and how to reach it.

Upstreams are tables under `[upstreams.NAME]` in a TOML file; catalog entries name one in their
`provider` field. `openai` is built in (api.openai.com, key in `OPENAI_API_KEY`) unless the file
redefines it; `local` is reserved for the embedded models. API keys are never written in the
file, only the name of the environment variable that holds them. See docs/providers.md.

Every upstream takes chat completions. Some also speak a newer dialect natively, and calls in
that dialect are forwarded to them as sent: `responses = true` marks one that serves OpenAI's
`/responses`, and `kind = "anthropic"` one that serves Anthropic's `/messages` (its key goes in
`x-api-key`, with an `anthropic-version` header).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from quartermaster.providers.errors import ProviderConfigError

LOCAL = "local"
AUTH_HEADERS = ("authorization", "api-key", "x-api-key")
KINDS = ("openai", "anthropic")
ANTHROPIC_VERSION = "2023-06-01"
"""The Messages API version an Anthropic upstream is sent when neither the caller nor the
operator's headers name one."""


@dataclass(frozen=True)
class UpstreamConfig:
    name: str
    base_url: str
    api_key_env: str | None = None
    kind: str = "openai"
    """The API family: "openai" (chat completions) or "anthropic" (also `/messages`)."""
    responses: bool = False
    """The upstream also serves OpenAI's `/responses`: /v1/responses calls are forwarded as
    sent instead of translated into chat completions."""
    auth_header: str | None = None
    """Where the key goes: "authorization" (bearer), "api-key" (Azure) or "x-api-key"; None:
    the kind's own (bearer for openai, x-api-key for anthropic)."""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    connect_retries: int = 2
    retry_backoff_s: float = 0.25
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    force: Mapping[str, Any] = field(default_factory=dict)
    """Body fields every call to this upstream gets, whatever the caller sent (`store = false`)."""
    remove: tuple[str, ...] = ()
    """Body fields taken out of every call before it is sent."""

    def __post_init__(self) -> None:
        _require(self.kind in KINDS, self, "kind", f"must be one of {KINDS}")
        _require(
            not (self.responses and self.kind == "anthropic"),
            self,
            "responses",
            "is for OpenAI-compatible upstreams; an anthropic one is sent /messages",
        )
        if self.auth_header is None:
            default = "x-api-key" if self.kind == "anthropic" else "authorization"
            object.__setattr__(self, "auth_header", default)
        url = urlsplit(self.base_url)
        _require(
            url.scheme in ("http", "https") and bool(url.netloc),
            self,
            "base_url",
            f"must be an http(s) URL, got {self.base_url!r}",
        )
        _require(
            self.auth_header in AUTH_HEADERS, self, "auth_header", f"must be one of {AUTH_HEADERS}"
        )
        _require(
            self.connect_timeout_s > 0 and self.read_timeout_s > 0,
            self,
            "connect_timeout_s/read_timeout_s",
            "must be positive",
        )
        _require(0 <= self.connect_retries <= 10, self, "connect_retries", "must be 0..10")
        _require(self.retry_backoff_s >= 0, self, "retry_backoff_s", "must not be negative")
        _require(
            not {"model", "stream", "messages"} & {*self.force, *self.remove},
            self,
            "force/remove",
            "cannot name model, stream or messages: the gateway sets them",
        )
        object.__setattr__(self, "remove", tuple(self.remove))

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key from the named environment variable; a named but unset variable is an error,
        found at start-up rather than as a 401 on the first request."""
        if self.api_key_env is None:
            return None
        value = (os.environ if environ is None else environ).get(self.api_key_env, "")
        _require(
            bool(value),
            self,
            "api_key_env",
            f"names {self.api_key_env}, which is not set in the environment",
        )
        return value

    def speaks(self, dialect: str) -> bool:
        """Whether calls in `dialect` ("responses", "messages") are forwarded to this upstream
        as sent."""
        return (dialect == "responses" and self.responses) or (
            dialect == "messages" and self.kind == "anthropic"
        )


def _require(ok: bool, config: UpstreamConfig, key: str, problem: str) -> None:
    if not ok:
        raise ProviderConfigError(f"[upstreams.{config.name}] {key} {problem}")


BUILTIN_UPSTREAMS = {
    "openai": UpstreamConfig(
        name="openai", base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"
    ),
}


def parse_upstreams(table: Mapping[str, Any]) -> dict[str, UpstreamConfig]:
    """Upstreams from the `upstreams` table of a parsed TOML document, plus the built-ins."""
    known = {f.name for f in fields(UpstreamConfig)} - {"name"}
    upstreams = dict(BUILTIN_UPSTREAMS)
    for name, raw in table.items():
        where = f"[upstreams.{name}]"
        if name == LOCAL:
            raise ProviderConfigError(f"{where}: `{LOCAL}` is reserved for the embedded models")
        if not isinstance(raw, Mapping):
            raise ProviderConfigError(f"{where} must be a table")
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ProviderConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
        if "base_url" not in raw:
            raise ProviderConfigError(f"{where}: base_url is required")
        try:
            upstreams[name] = UpstreamConfig(name=name, **raw)
        except TypeError as exc:
            raise ProviderConfigError(f"{where}: {exc}") from exc
    return upstreams


def load_upstreams(path: Path | None) -> dict[str, UpstreamConfig]:
    """Upstreams from a TOML file's `[upstreams.*]` tables; no file means the built-ins only."""
    if path is None:
        return parse_upstreams({})
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProviderConfigError(f"cannot read upstreams from {path}: {exc}") from exc
    return parse_upstreams(document.get("upstreams", {}))
