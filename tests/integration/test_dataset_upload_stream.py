"""Streamed uploads that do not end well (api/dataset_uploads.py): a client that leaves cancels
the work and the hold of the file being embedded is released; a server failure mid-way ends the
stream with a 500 error event. Nothing is stored or charged either way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from quartermaster.api import dataset_uploads
from quartermaster.providers import EmbedResult
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services.context import Context
from quartermaster.store.models import Document
from tests.integration.ledger_fixtures import EMBEDDING
from tests.integration.test_datasets import owner_with_dataset, rows, training


class StalledEmbedder:
    """An embedding model that never answers, so the upload is mid-way when the client leaves."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def embed(self, inputs: list[str]) -> EmbedResult:
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    async def close(self) -> None:
        """Nothing to release."""


async def test_a_client_that_leaves_mid_stream_is_charged_nothing(ctx: Context) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    model = StalledEmbedder()
    providers = ProviderRegistry({EMBEDDING: model})  # type: ignore[dict-item]
    files = [("notes.txt", b"The boiler is serviced every May by the caretaker.")]
    upload = dataset_uploads.Upload(ctx, providers, owner, dataset_id, files)
    lines = dataset_uploads.streamed(upload).body_iterator
    assert isinstance(lines, AsyncIterator)

    first = await anext(lines)
    assert b'"stage": "extracting"' in first
    await asyncio.wait_for(model.called.wait(), timeout=30)
    await lines.aclose()  # what the server does when the client disconnects

    assert await training(ctx, owner.uid) == (0, 0)
    assert await rows(ctx, Document) == 0


class BrokenEmbedder:
    """A model whose client fails in a way no provider error describes (a bug)."""

    async def embed(self, inputs: list[str]) -> EmbedResult:
        raise RuntimeError("a bug in the provider")

    async def close(self) -> None:
        """Nothing to release."""


async def test_a_failure_mid_stream_ends_it_with_a_server_error(ctx: Context) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    providers = ProviderRegistry({EMBEDDING: BrokenEmbedder()})  # type: ignore[dict-item]
    files = [("notes.txt", b"The boiler is serviced every May by the caretaker.")]
    upload = dataset_uploads.Upload(ctx, providers, owner, dataset_id, files)
    lines = [json.loads(line) async for line in dataset_uploads.streamed(upload).body_iterator]

    final = lines[-1]
    assert (final["event"], final["status_code"], final["percent"]) == ("error", 500, 100.0)
    assert final["error"]["message"].startswith("internal error")
    assert [line["event"] for line in lines[:-1]] == ["progress"] * (len(lines) - 1)
    assert await training(ctx, owner.uid) == (0, 0)
    assert await rows(ctx, Document) == 0
