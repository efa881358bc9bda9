"""Every setting and every command is documented where a user looks for it."""

from pathlib import Path

import pytest

from quartermaster.cli import app
from quartermaster.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_configuration_page(name: str) -> None:
    assert f"`QM_{name.upper()}`" in (DOCS / "configuration.md").read_text()


@pytest.mark.parametrize(
    "command", sorted(c.name or c.callback.__name__ for c in app.registered_commands)
)
def test_every_command_is_in_the_cli_page(command: str) -> None:
    assert f"`qm {command}" in (DOCS / "cli.md").read_text()
