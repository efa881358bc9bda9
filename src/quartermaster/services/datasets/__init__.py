"""Datasets: a member's collections of documents (library.py), uploads into them (ingestion.py)
with their progress (progress.py), audio uploads transcribed by a speech model
(transcription.py), one document's removal (documents.py), the embedding work metered as
training tokens (embedding_work.py), and retrieval (retrieval.py)."""

from quartermaster.services.datasets.documents import remove_document
from quartermaster.services.datasets.library import (
    MAX_NAME_CHARS,
    DatasetView,
    create,
    get,
    list_datasets,
    remove,
    update,
)

__all__ = [
    "MAX_NAME_CHARS",
    "DatasetView",
    "create",
    "get",
    "ingestion",
    "list_datasets",
    "progress",
    "remove",
    "remove_document",
    "retrieval",
    "update",
]
