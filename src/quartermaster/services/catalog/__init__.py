"""The model catalog: which models exist and the rates they are charged at (entries.py), a
per-process copy for the hot path (cache.py), and what a new installation starts with
(defaults.py)."""

from quartermaster.services.catalog.entries import (
    CAPABILITIES,
    ModelSpec,
    enabled_model,
    list_models,
    update_model,
)

__all__ = [
    "CAPABILITIES",
    "ModelSpec",
    "cache",
    "defaults",
    "enabled_model",
    "list_models",
    "update_model",
]
