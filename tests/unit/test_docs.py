"""Every setting and every command is documented where a user looks for it."""

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
