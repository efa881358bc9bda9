"""Every setting and every command is documented where a user looks for it."""

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from quartermaster.cli import app
from quartermaster.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def command_paths(command: Any, prefix: str = "qm") -> list[str]:
    """`qm init`, `qm user create`, …: every runnable command, groups walked."""
    subcommands: dict[str, Any] = getattr(command, "commands", {})
    if not subcommands:
        return [prefix]
    return [
        path
        for name, sub in sorted(subcommands.items())
        for path in command_paths(sub, f"{prefix} {name}")
    ]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_configuration_page(name: str) -> None:
    assert f"`QM_{name.upper()}`" in (DOCS / "configuration.md").read_text()


@pytest.mark.parametrize("command", command_paths(typer.main.get_command(app)))
def test_every_command_is_in_the_cli_page(command: str) -> None:
    assert f"`{command}" in (DOCS / "cli.md").read_text()


@pytest.mark.parametrize("conf", ["deploy.md", "../deploy/nginx/quartermaster-cac.conf"])
def test_nginx_gives_up_idle_connections_before_the_server_does(conf: str) -> None:
    """nginx reuses idle connections to `qm serve`; one the server closed first fails the call
    sent on it (a 502). So every nginx example's upstream timeout is below the default."""
    text = (DOCS / conf).read_text()
    timeouts = re.findall(r"^\s*keepalive_timeout\s+(\d+)s;", text, re.MULTILINE)
    assert timeouts, f"{conf}: the upstream block names its keepalive_timeout"
    assert all(int(t) < Settings.model_fields["keepalive_s"].default for t in timeouts)
