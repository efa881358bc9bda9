"""The served embedding model against stored reference vectors: all-MiniLM-L6-v2's float32
vectors of a few sentences (tests/fixtures/minilm_reference.json, made with the NumPy forward
pass that served before). Whichever engine serves must stay within a cosine of 0.999 of them;
the NumPy baseline the benchmark compares against must still reproduce them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from bench.bert_numpy import BertEncoder

from quartermaster.providers import LocalEmbedProvider, local_embed

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"
SERVED_COSINE_MIN = 0.999


def reference() -> tuple[list[str], npt.NDArray[np.float32]]:
    stored = json.loads(REFERENCE.read_text())
    texts = [entry["text"] for entry in stored["sentences"]]
    return texts, np.array([entry["vector"] for entry in stored["sentences"]], dtype=np.float32)


def cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


async def test_the_served_vectors_match_the_reference() -> None:
    texts, expected = reference()
    result = await LocalEmbedProvider().embed(texts)
    served = np.array(result.vectors, dtype=np.float32)
    assert served.shape == expected.shape
    assert cosines(served, expected).min() >= SERVED_COSINE_MIN


def test_the_numpy_baseline_still_gives_the_reference_vectors() -> None:
    texts, expected = reference()
    directory = local_embed.model_directory()
    embedder = local_embed.MiniLMEmbedder(directory, BertEncoder.from_directory(directory))
    vectors, _ = embedder.embed(texts)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
