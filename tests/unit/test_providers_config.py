"""Upstream configuration: what a valid `[upstreams.NAME]` table is, and the messages for
the ones that are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quartermaster.providers import ProviderConfigError, load_upstreams, parse_upstreams


def test_openai_is_built_in_and_can_be_redefined() -> None:
    assert parse_upstreams({})["openai"].api_key_env == "OPENAI_API_KEY"
    custom = parse_upstreams({"openai": {"base_url": "http://proxy.local/v1"}})["openai"]
    assert custom.base_url == "http://proxy.local/v1"
    assert custom.api_key_env is None


def test_an_azure_style_upstream() -> None:
    config = parse_upstreams(
        {
            "azure": {
                "base_url": "https://acme.openai.azure.com/openai/v1",
                "api_key_env": "AZURE_OPENAI_API_KEY",
                "auth_header": "api-key",
                "query": {"api-version": "preview"},
            }
        }
    )["azure"]
    assert (config.auth_header, dict(config.query)) == ("api-key", {"api-version": "preview"})
    assert config.api_key({"AZURE_OPENAI_API_KEY": "k"}) == "k"


def test_which_dialects_an_upstream_is_forwarded_and_where_its_key_goes() -> None:
    upstreams = parse_upstreams(
        {
            "claude": {"base_url": "https://api.anthropic.com/v1", "kind": "anthropic"},
            "newer": {"base_url": "http://newer/v1", "responses": True},
        }
    )
    claude, newer, openai = upstreams["claude"], upstreams["newer"], upstreams["openai"]
    assert (claude.auth_header, newer.auth_header) == ("x-api-key", "authorization")
    assert [(u.speaks("responses"), u.speaks("messages")) for u in (claude, newer, openai)] == [
        (False, True),
        (True, False),
        (False, False),
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"local": {"base_url": "http://x"}}, "reserved"),
        ({"x": {"api_key_env": "K"}}, "base_url is required"),
        ({"x": {"base_url": "ftp://x"}}, "must be an http"),
        ({"x": {"base_url": "http://x", "retries": 3}}, "unknown keys \\['retries'\\]"),
        ({"x": {"base_url": "http://x", "read_timeout_s": 0}}, "must be positive"),
        ({"x": {"base_url": "http://x", "read_timeout_s": "slow"}}, "upstreams.x"),
        ({"x": {"base_url": "http://x", "connect_retries": 99}}, "0..10"),
        ({"x": {"base_url": "http://x", "auth_header": "x-key"}}, "auth_header"),
        ({"x": "http://x"}, "must be a table"),
        ({"x": {"base_url": "http://x", "kind": "gemini"}}, "kind must be one of"),
        ({"x": {"base_url": "http://x", "kind": "anthropic", "responses": True}}, "responses"),
    ],
)
def test_bad_tables_say_what_to_fix(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        parse_upstreams(table)


def test_files(tmp_path: Path) -> None:
    assert set(load_upstreams(None)) == {"openai"}
    good = tmp_path / "good.toml"
    good.write_text('[upstreams.ollama]\nbase_url = "http://127.0.0.1:11434/v1"\n')
    assert set(load_upstreams(good)) == {"openai", "ollama"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[upstreams.ollama\n")
    with pytest.raises(ProviderConfigError, match="cannot read upstreams"):
        load_upstreams(bad)
    with pytest.raises(ProviderConfigError, match="cannot read upstreams"):
        load_upstreams(tmp_path / "missing.toml")
