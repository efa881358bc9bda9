"""Dataset ingestion throughput with the embedded all-MiniLM-L6-v2, engine against engine:
the float32 NumPy forward pass (bench/bert_numpy.py, before) and the int8 ONNX graph run with
onnxruntime (what serves, after), each giving tokens/s and chunks/s.

Usage: .venv/bin/python bench/ingest_bench.py [--documents 4] [--tokens 12000]
Prints one JSON object per engine, then one comparing them. Each document goes through the whole
service path a user's upload takes (parse, chunk, count, reserve, embed, store in one
transaction, settle) on a fresh SQLite database holding the demo enterprise, once per engine into
a dataset of its own; each model is loaded before the clock starts (its load time is reported
apart). The comparison gives the speed-up and the cosine of every stored ONNX vector to the NumPy
vector of the same chunk. `chunks_per_s` is what bounds a bulk `qm dataset ingest`; the load
average is printed too, since other work on the machine slows the model in proportion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bert_numpy import BertEncoder
from sqlalchemy import select

from quartermaster import bootstrap
from quartermaster.domain.principal import Principal
from quartermaster.providers import LocalEmbedProvider, local_embed
from quartermaster.providers.once import Once
from quartermaster.providers.onnx_encoder import OnnxEncoder, model_file
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.rag import from_bytes
from quartermaster.services import datasets, demo
from quartermaster.services.context import Context
from quartermaster.services.datasets import ingestion, library
from quartermaster.services.identity import accounts
from quartermaster.settings import Settings
from quartermaster.store import migrate
from quartermaster.store.models import Chunk

MEMBER = "carol@acme.example"
WORDS = [
    "the",
    "boiler",
    "harbour",
    "ledger",
    "member",
    "token",
    "budget",
    "invoice",
    "garage",
    "tide",
    "schedule",
    "report",
    "quarter",
    "revenue",
    "policy",
    "holiday",
    "caretaker",
    "visitor",
    "engine",
    "pump",
    "valve",
    "north",
    "east",
    "wing",
    "serviced",
    "posted",
    "weekly",
    "monthly",
    "approved",
    "denied",
    "request",
    "limit",
    "model",
    "answer",
    "question",
]


def document(seed: int, tokens: int) -> bytes:
    """Plain English-like sentences of about `tokens` cl100k tokens."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(tokens // 12):
        words = rng.choices(WORDS, k=10)
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences).encode()


ENGINES: dict[str, Callable[[Path], local_embed.Encoder]] = {
    "numpy": BertEncoder.from_directory,
    "onnx": lambda _directory: OnnxEncoder(model_file()),
}


def registry(engine: str) -> ProviderRegistry:
    """The default embedding model served by one engine, as the catalog names it."""
    directory = local_embed.model_directory()
    embedder = Once(lambda: local_embed.MiniLMEmbedder(directory, ENGINES[engine](directory)))
    provider = LocalEmbedProvider(local_embed.MODEL_NAME, embedder)
    return ProviderRegistry({library.DEFAULT_EMBEDDING_MODEL: provider})


async def run(documents: int, tokens: int, url: str) -> list[dict[str, object]]:
    async with bootstrap.opened(Settings(database_url=url)) as ctx:
        await demo.load(ctx)
        async with ctx.uow.begin(write=False) as tx:
            user = await accounts.find_user_by_email(tx.session, MEMBER)
        assert user is not None, "the demo has this member"
        member = Principal(user.id, is_operator=False, mfa_verified=True, via="cli")
        files = [document(i, tokens) for i in range(documents)]
        results = []
        for engine in ENGINES:
            async with registry(engine) as providers:
                results.append(await _measure(ctx, providers, member, engine, files))
        before, after = results
        return [*results, await _compare(ctx, before, after)]


async def _measure(
    ctx: Context, providers: ProviderRegistry, member: Principal, engine: str, files: list[bytes]
) -> dict[str, object]:
    loading = time.perf_counter()
    await providers.get(library.DEFAULT_EMBEDDING_MODEL).embed(["warm up"])
    load_s = time.perf_counter() - loading
    dataset = await datasets.create(ctx, member, f"Bench {engine}")
    start = time.perf_counter()
    stored = [
        await ingestion.ingest(ctx, providers, member, dataset.id, f"doc{i}.txt", data)
        for i, data in enumerate(files)
    ]
    seconds = time.perf_counter() - start
    chunks = sum(s.chunks for s in stored)
    counted = sum(s.tokens for s in stored)
    return {
        "engine": engine,
        "dataset_id": dataset.id,
        "model": library.DEFAULT_EMBEDDING_MODEL,
        "cpus": os.cpu_count(),
        "documents": len(files),
        "chunks": chunks,
        "tokens": counted,
        "tokens_charged": sum(s.tokens_charged for s in stored),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(counted / seconds, 1),
        "chunks_per_s": round(chunks / seconds, 2),
        "model_load_s": round(load_s, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


async def _vectors(ctx: Context, dataset_id: object) -> dict[str, np.ndarray]:
    async with ctx.uow.begin(write=False) as tx:
        rows = await tx.session.execute(
            select(Chunk.text, Chunk.embedding).where(Chunk.dataset_id == dataset_id)
        )
        return {text: from_bytes(data) for text, data in rows}


async def _compare(
    ctx: Context, before: dict[str, object], after: dict[str, object]
) -> dict[str, object]:
    """The speed-up, and how close each chunk's vector stayed (both are unit vectors)."""
    old = await _vectors(ctx, before["dataset_id"])
    new = await _vectors(ctx, after["dataset_id"])
    cosines = np.array([float(old[text] @ new[text]) for text in old.keys() & new.keys()])
    speedup = float(str(after["chunks_per_s"])) / float(str(before["chunks_per_s"]))
    return {
        "compare": f"{after['engine']} against {before['engine']}",
        "speedup_chunks_per_s": round(speedup, 2),
        "chunks_compared": len(cosines),
        "cosine_min": round(float(cosines.min()), 5),
        "cosine_mean": round(float(cosines.mean()), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=12_000, help="per document (cl100k)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        migrate.upgrade(url)
        results = asyncio.run(run(args.documents, args.tokens, url))
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
