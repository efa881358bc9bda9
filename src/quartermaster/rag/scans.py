"""Scanned pages to text: PNG, JPEG and TIFF images, and PDF pages with no text layer, read by
OCR (ocr.py) one page at a time, with progress by pages.

Every limit is checked from the headers before a pixel is decoded: an image's width and height
(a 20,000 × 20,000 PNG of a few kilobytes is a decompression bomb), the number of pages. Pillow
is handed only the format the bytes were identified as, and its own bomb check is replaced by
ours, which is lower. PDF pages are rendered (pypdfium2) at `OCR_DPI`, or smaller when a page
that large would pass the pixel limit.

Codes: image_too_large, too_many_pages, unreadable_document (all UnreadableDocument).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from quartermaster.domain.types import Progress
from quartermaster.rag import ocr
from quartermaster.rag.formats import JPEG, PNG, TIFF, UnreadableDocument

MAX_PAGE_PIXELS = 40_000_000
"""Per page: an A4 scan at 600 dpi is 35 M pixels."""
MAX_OCR_PAGES = 100
"""Per file: at a few seconds a page, a longer scan would hold the upload for minutes."""
OCR_DPI = 300
STAGE = "ocr"

_OPENERS: dict[str, Any] = {
    PNG: PngImagePlugin.PngImageFile,
    JPEG: JpegImagePlugin.JpegImageFile,
    TIFF: TiffImagePlugin.TiffImageFile,
}


def _too_large(width: int, height: int, subject: str) -> UnreadableDocument:
    return UnreadableDocument(
        f"{subject} is {width:,} × {height:,} pixels; the limit is {MAX_PAGE_PIXELS:,} pixels a "
        "page — scale it down",
        code="image_too_large",
    )


def _too_many(pages: int, what: str) -> UnreadableDocument:
    return UnreadableDocument(
        f"it has {pages:,} {what} to read by OCR; the limit is {MAX_OCR_PAGES} a file — split it",
        code="too_many_pages",
    )


def _report(on_progress: Progress | None, done: int, total: int) -> None:
    if on_progress is not None:
        on_progress(STAGE, done, total)


def read_image(data: bytes, content_type: str, on_progress: Progress | None = None) -> str:
    """The text of every page of an image file (a TIFF may hold several), once every page's
    header is within the limits."""
    image = _OPENERS[content_type](io.BytesIO(data))
    pages = getattr(image, "n_frames", 1)
    if pages > MAX_OCR_PAGES:
        raise _too_many(pages, "pages")
    for page in range(pages):
        image.seek(page)
        width, height = image.size
        if width * height > MAX_PAGE_PIXELS:
            raise _too_large(width, height, f"page {page + 1}" if pages > 1 else "it")
    texts = []
    for page in range(pages):
        image.seek(page)
        texts.append(ocr.read_text(image))
        _report(on_progress, page + 1, pages)
    return "\n\n".join(texts)


def read_pdf_pages(
    data: bytes, indexes: list[int], on_progress: Progress | None = None
) -> list[str]:
    """The text of each PDF page at `indexes` (those without a text layer), in order."""
    if len(indexes) > MAX_OCR_PAGES:
        raise _too_many(len(indexes), "pages without a text layer")
    texts = []
    for done, page in enumerate(_rendered(data, indexes), start=1):
        texts.append(ocr.read_text(page))
        _report(on_progress, done, len(indexes))
    return texts


def _rendered(data: bytes, indexes: list[int]) -> Iterator[Image.Image]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        for index in indexes:
            page = document[index]
            width_pt, height_pt = page.get_size()
            scale = min(OCR_DPI / 72, math.sqrt(MAX_PAGE_PIXELS / max(width_pt * height_pt, 1)))
            yield page.render(scale=scale, grayscale=True).to_pil()
            page.close()
    finally:
        document.close()
