"""What `qm demo` prints after the logins: a member's key as an `export` line and a curl call
that uses it, both ready to paste, so the first call needs no choosing or editing."""

from __future__ import annotations

import json
import shlex

from quartermaster.domain.types import Role
from quartermaster.services.catalog import defaults
from quartermaster.services.demo import DemoLogin
from quartermaster.settings import Settings

EVERY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - names the wildcard, binds nothing


def base_url(settings: Settings) -> str:
    """Where `qm serve` answers on this machine (a wildcard address answers on loopback)."""
    host = "127.0.0.1" if settings.host in EVERY_ADDRESS else settings.host
    return f"http://{host}:{settings.port}"


def instructions(logins: list[DemoLogin], settings: Settings) -> list[str]:
    """The lines to print: whose key it is, `export KEY=…`, and the curl call."""
    login = next(login for login in logins if login.role == Role.MEMBER)
    hello = {"model": defaults.chat_model(), "messages": [{"role": "user", "content": "Hi"}]}
    body = json.dumps(hello)
    return [
        f"Try the gateway as {login.name} ({login.email}), once `qm serve` is up:",
        f"  export KEY={login.api_key}",
        f"  curl -s {base_url(settings)}/v1/chat/completions -H "
        f'"Authorization: Bearer $KEY" -H "Content-Type: application/json" -d {shlex.quote(body)}',
    ]
