"""Building the process's providers from catalog entries and upstream configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from quartermaster.providers import (
    ChatMessage,
    ChatRequest,
    LocalChatProvider,
    LocalEmbedProvider,
    LocalTranscribeProvider,
    OpenAIHTTPProvider,
    ProviderConfigError,
    build_registry,
    load_upstreams,
)
from quartermaster.services.catalog.entries import default_specs
from tests.fakes.upstream import FakeUpstream


@dataclass(frozen=True)
class Entry:
    name: str
    provider: str
    upstream_model: str
    enabled: bool = True


UPSTREAMS_TOML = """
[upstreams.vllm]
base_url = "http://vllm.internal:8000/v1"
api_key_env = "VLLM_KEY"
read_timeout_s = 30
"""


@pytest.fixture
def upstreams_file(tmp_path: Path) -> Path:
    path = tmp_path / "upstreams.toml"
    path.write_text(UPSTREAMS_TOML)
    return path


async def test_the_default_catalog_needs_no_configuration() -> None:
    async with build_registry(default_specs()) as registry:
        assert registry.models == ["all-minilm-l6-v2", "smollm2-135m-instruct", "whisper-tiny-en"]
        assert isinstance(registry.get("smollm2-135m-instruct"), LocalChatProvider)
        assert isinstance(registry.get("all-minilm-l6-v2"), LocalEmbedProvider)
        assert isinstance(registry.get("whisper-tiny-en"), LocalTranscribeProvider)
        assert "gpt-4o-mini" not in registry  # disabled in the catalog
        assert "whisper-1" not in registry


async def test_remote_and_local_models_register_alike(
    upstreams_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_KEY", "secret")
    fake = FakeUpstream(reply="from vllm")
    entries = [
        Entry("llama-70b", "vllm", "meta/llama-70b"),
        Entry("smol", "local", "SmolLM2-135M-Instruct"),
    ]
    registry = build_registry(
        entries, load_upstreams(upstreams_file), transports={"vllm": fake.transport()}
    )
    async with registry:
        remote = registry.get("llama-70b")
        assert isinstance(remote, OpenAIHTTPProvider)
        result = await remote.chat(ChatRequest([ChatMessage("user", "hi")]))
    assert result.content == "from vllm"
    assert fake.bodies()[0]["model"] == "meta/llama-70b"
    assert fake.requests[0].headers["authorization"] == "Bearer secret"
    assert registry.models == []  # closed


def test_an_unconfigured_upstream_stops_start_up() -> None:
    with pytest.raises(ProviderConfigError, match=r"add \[upstreams.azure\]"):
        build_registry([Entry("gpt", "azure", "gpt-4o")])


def test_a_missing_api_key_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderConfigError, match="OPENAI_API_KEY, which is not set"):
        build_registry([Entry("gpt-4o-mini", "openai", "gpt-4o-mini")])


def test_an_unknown_local_model_stops_start_up() -> None:
    with pytest.raises(ProviderConfigError, match="no model 'llama-3-8b'"):
        build_registry([Entry("llama", "local", "llama-3-8b")])


def test_a_disabled_model_is_not_built_even_when_its_upstream_is_unknown() -> None:
    assert build_registry([Entry("x", "nowhere", "x", enabled=False)]).models == []


def test_an_unknown_model_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="is it enabled"):
        build_registry([]).get("nope")


async def test_factories_extend_the_registry_like_the_built_ins() -> None:
    made: list[str] = []

    class Recording:
        def create(self, entry: Entry) -> LocalChatProvider:
            made.append(entry.upstream_model)
            return LocalChatProvider(entry.upstream_model)

    registry = build_registry([Entry("m", "custom", "m-up")], factories={"custom": Recording()})
    assert made == ["m-up"]
    await registry.close()
