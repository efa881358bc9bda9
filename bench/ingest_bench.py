"""Dataset ingestion throughput with the embedded all-MiniLM-L6-v2: tokens/s and chunks/s.

Usage: .venv/bin/python bench/ingest_bench.py [--documents 4] [--tokens 12000]
Prints one JSON object. Each document goes through the whole service path a user's upload takes
(parse, chunk, count, reserve, embed, store in one transaction, settle) on a fresh SQLite
database holding the demo enterprise; the model is loaded before the clock starts (its load
time is reported apart). `chunks_per_s` is what bounds a bulk `qm dataset ingest`; the load
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
from pathlib import Path

from quartermaster import bootstrap
from quartermaster.domain.principal import Principal
from quartermaster.domain.types import ModelKind
from quartermaster.providers.registry import ProviderRegistry, build_registry
from quartermaster.services import catalog, datasets, demo
from quartermaster.services.context import Context
from quartermaster.services.datasets import ingestion, library
from quartermaster.services.identity import accounts
from quartermaster.settings import Settings
from quartermaster.store import migrate

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


async def run(documents: int, tokens: int, url: str) -> dict[str, object]:
    async with bootstrap.opened(Settings(database_url=url)) as ctx:
        await demo.load(ctx)
        async with ctx.uow.begin(write=False) as tx:
            user = await accounts.find_user_by_email(tx.session, MEMBER)
        assert user is not None, "the demo has this member"
        member = Principal(user.id, is_operator=False, mfa_verified=True, via="cli")
        specs = [s for s in await catalog.list_models(ctx) if s.kind is ModelKind.EMBEDDING]
        async with build_registry(specs) as providers:
            return await _measure(ctx, providers, member, documents, tokens)


async def _measure(
    ctx: Context, providers: ProviderRegistry, member: Principal, documents: int, tokens: int
) -> dict[str, object]:
    loading = time.perf_counter()
    await providers.get(library.DEFAULT_EMBEDDING_MODEL).embed(["warm up"])
    load_s = time.perf_counter() - loading
    dataset = await datasets.create(ctx, member, "Bench")
    files = [document(i, tokens) for i in range(documents)]
    start = time.perf_counter()
    stored = [
        await ingestion.ingest(ctx, providers, member, dataset.id, f"doc{i}.txt", data)
        for i, data in enumerate(files)
    ]
    seconds = time.perf_counter() - start
    chunks = sum(s.chunks for s in stored)
    counted = sum(s.tokens for s in stored)
    return {
        "model": library.DEFAULT_EMBEDDING_MODEL,
        "cpus": os.cpu_count(),
        "documents": documents,
        "chunks": chunks,
        "tokens": counted,
        "tokens_charged": sum(s.tokens_charged for s in stored),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(counted / seconds, 1),
        "chunks_per_s": round(chunks / seconds, 2),
        "model_load_s": round(load_s, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=12_000, help="per document (cl100k)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        migrate.upgrade(url)
        result = asyncio.run(run(args.documents, args.tokens, url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
