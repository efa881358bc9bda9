"""rag/: every file type read to text, refusals that say why, token-aware chunks, cosine search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from quartermaster.domain.errors import Conflict
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.rag import (
    MAX_FILE_BYTES,
    NumpyIndex,
    UnreadableDocument,
    extract,
    plan_for,
    split,
    to_bytes,
)
from tests.fakes import documents

TOKENIZER = tokenizer_for_model("all-MiniLM-L6-v2")


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        (
            "notes.txt",
            b"The boiler is serviced in May.\r\n",
            "The boiler is serviced in May.",
        ),
        ("readme.md", b"# Title\n\nSome *markdown* text.", "# Title\n\nSome *markdown* text."),
        ("page.html", documents.html("Tides", "High tide at 6 &amp; low at noon."), "Tides"),
        (
            "sheet.csv",
            documents.csv(["city", "mayor"], ["Ellery", "Ann Lee"]),
            "city: Ellery; mayor: Ann Lee",
        ),
        (
            "report.pdf",
            documents.pdf("Quarterly revenue rose (slightly).", "Page two."),
            "rose (slightly)",
        ),
        ("memo.docx", documents.docx("First paragraph.", table=[["k", "v"]]), "k | v"),
    ],
)
def test_every_supported_type_is_read_to_text(filename: str, data: bytes, expected: str) -> None:
    document = extract(filename, data)
    assert expected in document.text
    assert document.filename == filename


def test_html_keeps_visible_text_and_drops_scripts_and_styles() -> None:
    text = extract("page.html", documents.html("Tides", "High tide at 6 &amp; low.")).text
    assert "High tide at 6 & low." in text
    assert "secret" not in text
    assert "alert" not in text
    assert "color" not in text


def test_a_pdf_keeps_its_pages_in_order() -> None:
    text = extract("two.pdf", documents.pdf("Alpha page.", "Beta page.")).text
    assert text.index("Alpha") < text.index("Beta")


@pytest.mark.parametrize(
    ("filename", "data", "code", "words"),
    [
        ("cut.pdf", documents.corrupt_pdf(), "unreadable_document", "cannot be read"),
        ("fake.pdf", b"just text pretending", "type_mismatch", "named as a PDF"),
        ("fake.docx", b"PK\x03\x04 not really a zip", "unreadable_document", "cannot be read"),
        ("tool.exe", b"MZ\x90\x00", "unsupported_file_type", ".exe cannot be read"),
        ("latin.txt", "café".encode("latin-1"), "unreadable_document", "not UTF-8"),
        ("blank.md", b"  \n\n ", "empty_document", "contains no text"),
        ("big.txt", b"a" * (MAX_FILE_BYTES + 1), "file_too_large", "split it"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_the_reason(
    filename: str, data: bytes, code: str, words: str
) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        extract(filename, data)
    assert refused.value.code == code
    assert filename in refused.value.message
    assert words in refused.value.message


def test_chunks_fit_the_window_overlap_and_cover_the_text() -> None:
    sentences = [f"Fact {i}: the lighthouse keeper logged ship {i}." for i in range(200)]
    plan = plan_for(256)
    chunks = split(" ".join(sentences), TOKENIZER, plan)
    assert (plan.tokens, plan.overlap) == (192, 32)
    assert len(chunks) > 5
    assert all(chunk.tokens <= plan.tokens + 2 for chunk in chunks)
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    for before, after in itertools.pairwise(chunks):
        assert before.text[-40:] in after.text  # the overlap repeats the end of the previous
    assert all(any(s in chunk.text for chunk in chunks) for s in sentences)
    assert all(chunk.tokens == TOKENIZER.count(chunk.text) for chunk in chunks)


def test_a_word_longer_than_a_chunk_is_cut_to_fit() -> None:
    chunks = split("x" * 5000 + " tail", TOKENIZER, plan_for(64))
    assert all(chunk.tokens <= 48 + 2 for chunk in chunks)
    assert chunks[-1].text.endswith("tail")


def test_long_windows_still_get_retrieval_sized_chunks() -> None:
    assert plan_for(8192).tokens == 512


def test_the_index_finds_the_nearest_vectors_best_first() -> None:
    index = NumpyIndex()
    vectors = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.7, 0.7, 0.0]]
    index.put(7, "tag-a", [10, 11, 12], [to_bytes(v) for v in vectors])
    hits = index.search(7, [0.0, 1.0, 0.0], k=2)
    assert [hit.chunk_id for hit in hits] == [11, 12]
    assert hits[0].score == pytest.approx(1.0)
    assert hits[1].score == pytest.approx(np.sqrt(0.5))


def test_the_index_is_keyed_by_the_content_tag() -> None:
    index = NumpyIndex(max_datasets=1)
    index.put(1, "old", [1], [to_bytes([1.0, 0.0])])
    assert index.has(1, "old")
    assert not index.has(1, "new")
    index.put(2, "x", [], [])
    assert not index.has(1, "old")  # least recently used left memory
    assert index.search(2, [1.0, 0.0], 3) == []


def test_a_query_of_another_size_is_refused() -> None:
    index = NumpyIndex()
    index.put(1, "t", [1], [to_bytes([1.0, 0.0, 0.0])])
    with pytest.raises(Conflict, match="create a new dataset"):
        index.search(1, [1.0, 0.0], 1)
