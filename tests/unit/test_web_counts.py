"""Counts on the pages read as English: "1 document · 12,345 chunks", never "1 documents"."""

from __future__ import annotations

from quartermaster.web.render import counted


def test_one_is_singular_and_others_plural_with_separators() -> None:
    assert counted(1, "document") == "1 document"
    assert counted(0, "chunk") == "0 chunks"
    assert counted(12_345, "token") == "12,345 tokens"
