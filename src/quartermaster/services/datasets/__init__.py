"""Datasets: a member's collections of documents (library.py), uploads into them (ingestion.py),
the embedding work metered as training tokens (embedding_work.py), and retrieval (retrieval.py)."""

from quartermaster.services.datasets.library import (
    DEFAULT_EMBEDDING_MODEL,
    MAX_NAME_CHARS,
    DatasetView,
    create,
    get,
    list_datasets,
    new_tag,
    owned,
    remove,
    update,
    visible,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "MAX_NAME_CHARS",
    "DatasetView",
    "create",
    "get",
    "list_datasets",
    "new_tag",
    "owned",
    "remove",
    "update",
    "visible",
]
