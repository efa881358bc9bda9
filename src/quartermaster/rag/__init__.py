"""Retrieval building blocks: identify a file and parse it to text (OCR for scans), probe an
audio file's duration, cut text into token-aware chunks, and search chunk vectors by cosine
similarity behind the `VectorIndex` protocol. No I/O beyond the bytes given (and the OCR
program); the services own storage, metering, transcription and embedding.

This `__all__` is the package's public surface; other layers import only these names.
"""

from quartermaster.rag.audio import Recording, probe
from quartermaster.rag.chunk import Chunk, ChunkPlan, TokenCounter, plan_for, split
from quartermaster.rag.formats import AUDIO, SUPPORTED_SUFFIXES, UnreadableDocument
from quartermaster.rag.index import Hit, NumpyIndex, VectorIndex, from_bytes, to_bytes
from quartermaster.rag.parse import (
    MAX_FILE_BYTES,
    ParsedDocument,
    checked_type,
    extract,
    from_text,
)

__all__ = [
    "AUDIO",
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "ChunkPlan",
    "Hit",
    "NumpyIndex",
    "ParsedDocument",
    "Recording",
    "TokenCounter",
    "UnreadableDocument",
    "VectorIndex",
    "checked_type",
    "extract",
    "from_bytes",
    "from_text",
    "plan_for",
    "probe",
    "split",
    "to_bytes",
]
