"""rag/scans.py through `extract`: text in images and in scanned PDFs is read by OCR (the real
Tesseract), pages reported as they are read; images too large are refused from their headers."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from quartermaster.domain.errors import ServiceUnavailable
from quartermaster.rag import UnreadableDocument, extract
from quartermaster.rag.scans import MAX_PAGE_PIXELS
from tests.fakes import documents, media

LINES = ["The boiler room key hangs", "behind the blue door."]


@pytest.fixture
def tesseract() -> None:
    media.require_tesseract()


@pytest.mark.parametrize(("filename", "image_format"), [("a.png", "PNG"), ("a.jpg", "JPEG")])
@pytest.mark.usefixtures("tesseract")
def test_the_text_of_an_image_is_read(filename: str, image_format: str) -> None:
    document = extract(filename, media.image(LINES, image_format))
    assert "boiler room key" in document.text
    assert "blue door" in document.text
    assert document.content_type == f"image/{image_format.lower()}"


@pytest.mark.usefixtures("tesseract")
def test_every_page_of_a_scanned_pdf_is_read_and_reported() -> None:
    reports: list[tuple[str, int, int]] = []
    scan = media.scanned_pdf(["First page mentions tulips."], ["Second page mentions ferns."])
    text = extract("scan.pdf", scan, lambda *report: reports.append(report)).text
    assert text.index("tulips") < text.index("ferns")
    assert reports == [("ocr", 1, 2), ("ocr", 2, 2)]


def test_a_pdf_with_a_text_layer_is_not_read_by_ocr() -> None:
    reports: list[tuple[str, int, int]] = []
    extract("typed.pdf", documents.pdf("Typed words."), lambda *report: reports.append(report))
    assert reports == []


def test_a_decompression_bomb_is_refused_from_its_header_at_once() -> None:
    bomb = media.png_bomb(20_000, 20_000)
    assert len(bomb) < 1_000_000
    started = time.perf_counter()
    with pytest.raises(UnreadableDocument) as refused:
        extract("huge.png", bomb)
    assert time.perf_counter() - started < 1
    assert refused.value.code == "image_too_large"
    assert refused.value.message == (
        f"huge.png: it is 20,000 × 20,000 pixels; the limit is {MAX_PAGE_PIXELS:,} pixels a page "
        "— scale it down"
    )


def test_a_docx_bomb_is_refused_before_it_is_inflated() -> None:
    with pytest.raises(UnreadableDocument) as refused:
        extract("memo.docx", media.docx_bomb())
    assert refused.value.code == "file_too_large"
    assert "memo.docx: it would inflate to" in refused.value.message


def test_a_corrupt_image_is_refused_as_unreadable() -> None:
    whole = media.image(LINES)
    with pytest.raises(UnreadableDocument) as refused:
        extract("cut.png", whole[: len(whole) // 3])
    assert refused.value.code == "unreadable_document"
    assert refused.value.message.startswith("cut.png cannot be read")


def test_without_tesseract_an_image_is_refused_as_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no program named tesseract on it
    with pytest.raises(ServiceUnavailable) as refused:
        extract("a.png", media.image(LINES))
    assert refused.value.code == "ocr_unavailable"
    assert refused.value.message.startswith("a.png: text in images cannot be read here")


def test_a_tiff_page_too_large_is_refused_before_any_page_is_read() -> None:
    reports: list[tuple[str, int, int]] = []
    pages = [media.picture_of(LINES), Image.new("1", (9_000, 9_000), 1)]
    tiff = io.BytesIO()
    pages[0].save(
        tiff,
        format="TIFF",
        save_all=True,
        append_images=pages[1:],
        compression="tiff_adobe_deflate",
    )
    with pytest.raises(UnreadableDocument) as refused:
        extract("two.tiff", tiff.getvalue(), lambda *report: reports.append(report))
    assert refused.value.message.startswith("two.tiff: page 2 is 9,000 × 9,000 pixels")
    assert reports == []
