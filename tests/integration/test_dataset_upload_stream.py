"""A streamed upload whose client leaves (api/dataset_uploads.py): the work is cancelled, the
hold of the file being embedded is released, and nothing is stored or charged."""

from __future__ import annotations

import asyncio
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
