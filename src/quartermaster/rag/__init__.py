"""Retrieval building blocks: parse a file to text, cut it into token-aware chunks, and search
chunk vectors by cosine similarity behind the `VectorIndex` protocol. No I/O beyond the bytes
given; the services own storage, metering and embedding.

This `__all__` is the package's public surface; other layers import only these names.
"""

from quartermaster.rag.chunk import Chunk, ChunkPlan, TokenCounter, plan_for, split
from quartermaster.rag.index import Hit, NumpyIndex, VectorIndex, from_bytes, to_bytes
from quartermaster.rag.parse import (
    MAX_FILE_BYTES,
    SUPPORTED_SUFFIXES,
    ParsedDocument,
    UnreadableDocument,
    extract,
)

__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "ChunkPlan",
    "Hit",
    "NumpyIndex",
    "ParsedDocument",
    "TokenCounter",
    "UnreadableDocument",
    "VectorIndex",
    "extract",
    "from_bytes",
    "plan_for",
    "split",
    "to_bytes",
]
