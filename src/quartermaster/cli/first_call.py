"""What `qm demo` prints after the logins: a member's key as an `export` line and a curl call
that uses it, both ready to paste, so the first call needs no choosing or editing."""

from __future__ import annotations

import shlex

from quartermaster.domain.types import ModelKind, Role
from quartermaster.services.catalog import entries
from quartermaster.services.demo import DemoLogin
from quartermaster.settings import Settings

EVERY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - names the wildcard, binds nothing


def base_url(settings: Settings) -> str:
    """Where `qm serve` answers on this machine (a wildcard address answers on loopback)."""
    host = "127.0.0.1" if settings.host in EVERY_ADDRESS else settings.host
    return f"http://{host}:{settings.port}"


def chat_model() -> str:
    """The catalog's first chat model: the offline one the demo serves."""
    return next(spec.name for spec in entries.default_specs() if spec.kind is ModelKind.CHAT)


def instructions(logins: list[DemoLogin], settings: Settings) -> list[str]:
    """The lines to print: whose key it is, `export KEY=…`, and the curl call."""
    login = next(login for login in logins if login.role == Role.MEMBER)
    body = f'{{"model": "{chat_model()}", "messages": [{{"role": "user", "content": "Hi"}}]}}'
    return [
        f"Try the gateway as {login.name} ({login.email}), once `qm serve` is up:",
        f"  export KEY={login.api_key}",
        f"  curl -s {base_url(settings)}/v1/chat/completions -H "
        f'"Authorization: Bearer $KEY" -H "Content-Type: application/json" -d {shlex.quote(body)}',
    ]
