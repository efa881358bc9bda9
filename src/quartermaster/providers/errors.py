"""The providers' error tree. Providers raise only these; the gateway maps each to an OpenAI
error object in one table, so no httpx, llama.cpp or NumPy exception ever reaches a route.

ProviderError                 an upstream call failed; `upstream` names the configured upstream
├── ProviderUnavailable       could not connect, even after the connect retries (502)
├── ProviderTimeout           connected, but the upstream went quiet past the read timeout (504)
├── ProviderBadResponse       the upstream failed (5xx), sent a malformed body or cut a stream (502)
└── ProviderRejected          the upstream refused the request (4xx): `status` and its `message`

ProviderConfigError           a provider cannot be built from its configuration; raised at
                              start-up only, never while serving (a ConfigurationError)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from quartermaster.settings import ConfigurationError


@dataclass
class ProviderError(Exception):
    """A failed upstream call; `message` is safe to show to the caller."""

    message: str
    upstream: str = ""

    def __str__(self) -> str:
        return f"{self.upstream}: {self.message}" if self.upstream else self.message


class ProviderUnavailable(ProviderError):
    """No connection could be made to the upstream."""


class ProviderTimeout(ProviderError):
    """The upstream accepted the connection but did not answer in time."""


@dataclass
class ProviderBadResponse(ProviderError):
    """The upstream answered with a server error or with something that is not the protocol."""

    status: int | None = None


@dataclass
class ProviderRejected(ProviderError):
    """The upstream refused the request as the caller's fault (bad input, quota, auth)."""

    status: int = 400


class ProviderConfigError(ConfigurationError):
    """A provider's configuration cannot work; the message says what to change."""


def not_supported(model: str, operation: str) -> ProviderRejected:
    """The refusal a provider gives for an operation its model does not do (chat, embed)."""
    return ProviderRejected(f"model {model} does not support {operation}", status=400)


@contextmanager
def local_failures(model: str) -> Iterator[None]:
    """An embedded model's unexpected failures become the provider's, like an upstream's."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        raise ProviderBadResponse(f"the local model {model} failed: {exc!r}", "local") from exc
