"""Quartermaster: a self-hosted GenAI platform with monthly token caps per member."""

__version__ = "0.1.0"

__all__ = ["__version__"]
