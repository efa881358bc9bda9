"""Cosine search over a dataset's chunk vectors, behind the `VectorIndex` protocol.

`NumpyIndex` keeps one float32 matrix of unit rows per dataset in memory, keyed by the dataset's
content tag. The tag is replaced in the database whenever the dataset's chunks change, by any
process, so a process whose cached tag differs reloads before searching: caches are never
shared and never trusted past a change. A few hundred thousand rows take tens of milliseconds
by brute force, which is why there is no approximate index (and no pgvector, which needs a
PostgreSQL extension that is not always installable); another implementation can be swapped in
behind the protocol.

Errors: Conflict (embedding_dimensions_changed) when a query's vector does not match the
dataset's, i.e. the dataset's embedding model now returns vectors of another size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from quartermaster.domain.errors import Conflict

Matrix = npt.NDArray[np.float32]


def to_bytes(vector: Sequence[float]) -> bytes:
    """A vector as stored beside its chunk: little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes) -> Matrix:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float
    """Cosine similarity, from -1 to 1."""


class VectorIndex(Protocol):
    def has(self, dataset_id: int, tag: str) -> bool:
        """Whether the dataset's vectors as of `tag` are loaded."""
        ...

    def put(
        self, dataset_id: int, tag: str, chunk_ids: Sequence[int], vectors: Sequence[bytes]
    ) -> None: ...

    def search(self, dataset_id: int, query: Sequence[float], k: int) -> list[Hit]:
        """The `k` most similar chunks, best first; the dataset must have been `put`."""
        ...

    def forget(self, dataset_id: int) -> None: ...


@dataclass(frozen=True)
class _Loaded:
    tag: str
    chunk_ids: npt.NDArray[np.int64]
    matrix: Matrix


def _unit_rows(matrix: Matrix) -> Matrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


class NumpyIndex:
    """Brute-force cosine search; the least recently searched datasets leave memory first."""

    def __init__(self, max_datasets: int = 64) -> None:
        assert max_datasets > 0, "keep at least one dataset in memory"
        self._max = max_datasets
        self._loaded: OrderedDict[int, _Loaded] = OrderedDict()

    def has(self, dataset_id: int, tag: str) -> bool:
        loaded = self._loaded.get(dataset_id)
        return loaded is not None and loaded.tag == tag

    def put(
        self, dataset_id: int, tag: str, chunk_ids: Sequence[int], vectors: Sequence[bytes]
    ) -> None:
        assert len(chunk_ids) == len(vectors), "one vector per chunk"
        rows = [from_bytes(vector) for vector in vectors]
        if len({row.shape for row in rows}) > 1:
            raise _dimensions_changed(dataset_id)
        matrix = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        ids = np.asarray(chunk_ids, dtype=np.int64)
        self._loaded[dataset_id] = _Loaded(tag, ids, _unit_rows(matrix))
        self._loaded.move_to_end(dataset_id)
        while len(self._loaded) > self._max:
            self._loaded.popitem(last=False)

    def search(self, dataset_id: int, query: Sequence[float], k: int) -> list[Hit]:
        loaded = self._loaded[dataset_id]
        self._loaded.move_to_end(dataset_id)
        if not len(loaded.chunk_ids) or k <= 0:
            return []
        vector = np.asarray(query, dtype=np.float32)
        if vector.shape != (loaded.matrix.shape[1],):
            raise _dimensions_changed(dataset_id)
        scores = loaded.matrix @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
        top = np.argpartition(-scores, min(k, len(scores)) - 1)[:k]
        best = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(int(loaded.chunk_ids[i]), float(scores[i])) for i in best]

    def forget(self, dataset_id: int) -> None:
        self._loaded.pop(dataset_id, None)


def _dimensions_changed(dataset_id: int) -> Conflict:
    return Conflict(
        f"dataset {dataset_id}'s vectors do not match its embedding model's any more; create a "
        "new dataset and upload its documents again",
        param="datasets",
        code="embedding_dimensions_changed",
    )
