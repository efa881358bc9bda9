"""Files to plain text: plain text, Markdown, HTML, CSV, PDF (pypdf), DOCX (python-docx), and
by OCR (scans.py) images and PDF pages with no text layer. Audio is transcribed by a model, in
the services; its text becomes a document here (`from_text`).

The type comes from the file name's suffix and is checked against the bytes (formats.py), so a
renamed file is refused instead of half read. Every refusal is an `UnreadableDocument`
(InvalidInput, 400) whose message names the file and says what to do; the parsers' own
exceptions never leave this module.

Codes: those of formats.py and scans.py, file_too_large, unreadable_document, empty_document.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

from quartermaster.domain.errors import DomainError
from quartermaster.domain.types import Progress
from quartermaster.rag import scans
from quartermaster.rag.formats import (
    CSV,
    DOCX,
    HTML,
    IMAGES,
    MARKDOWN,
    PDF,
    TEXT,
    UnreadableDocument,
    identify,
)

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_UNZIPPED_BYTES = 100 * 1024 * 1024
"""A DOCX is a ZIP archive: refuse one that would inflate past this (a zip bomb) before reading."""


@dataclass(frozen=True)
class ParsedDocument:
    filename: str
    content_type: str
    text: str


def extract(filename: str, data: bytes, on_progress: Progress | None = None) -> ParsedDocument:
    """The document's text, normalised; refuses empty, oversized, unreadable or unknown files.
    OCR reports its pages to `on_progress` (stage "ocr")."""
    content_type = checked_type(filename, data)
    try:
        raw = _PARSERS[content_type](data, on_progress)
    except DomainError as exc:
        raise type(exc)(f"{filename}: {exc.message}", "files", exc.code, exc.details) from None
    except Exception as exc:  # a parser's own error: translated here, at the boundary
        raise _unreadable(filename, f"{type(exc).__name__}: {exc}") from None
    return from_text(filename, content_type, raw)


def checked_type(filename: str, data: bytes) -> str:
    """The file's content type once its size and first bytes are acceptable."""
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableDocument(
            f"{filename} is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,} per file — "
            "split it into smaller files",
            param="files",
            code="file_too_large",
        )
    return identify(filename, data)


def from_text(filename: str, content_type: str, raw: str) -> ParsedDocument:
    """A document of `raw` text (parsed, OCR'd or transcribed), refused when nothing is left."""
    text = normalise(raw)
    if not text:
        raise UnreadableDocument(
            f"{filename} contains no text to index (no words were found in it)",
            param="files",
            code="empty_document",
        )
    return ParsedDocument(filename, content_type, text)


def _unreadable(filename: str, reason: str) -> UnreadableDocument:
    return UnreadableDocument(
        f"{filename} cannot be read ({reason}); check that the file opens and re-save it",
        param="files",
        code="unreadable_document",
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\u00a0]+")


def normalise(text: str) -> str:
    """One newline style, no control characters, no trailing spaces, at most one blank line."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def decode_text(data: bytes, on_progress: Progress | None = None) -> str:
    if b"\x00" in data:
        raise UnreadableDocument("it holds binary data, not text", code="unreadable_document")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(
            f"it is not UTF-8 text (byte {exc.start}); save it as UTF-8",
            code="unreadable_document",
        ) from None


class _HTMLText(HTMLParser):
    """Visible text only: scripts, styles and other non-content elements are skipped whole."""

    SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe"})
    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article"}
        | {"table", "ul", "ol", "pre", "blockquote", "header", "footer", "title", "dt", "dd"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def parse_html(data: bytes, on_progress: Progress | None = None) -> str:
    parser = _HTMLText()
    parser.feed(decode_text(data))
    parser.close()
    return "".join(parser.parts)


def parse_csv(data: bytes, on_progress: Progress | None = None) -> str:
    """One line per row, each value labelled with its column, so a retrieved row reads alone."""
    rows = list(csv.reader(io.StringIO(decode_text(data), newline="")))
    if not rows:
        return ""
    header, *body = rows
    if not body:
        return ", ".join(header)
    return "\n".join(
        "; ".join(f"{name}: {value}" for name, value in zip(header, row, strict=False) if value)
        for row in body
    )


def parse_pdf(data: bytes, on_progress: Progress | None = None) -> str:
    """The text layer of every page; the pages without one (scans) are read by OCR."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise UnreadableDocument(
            "it is encrypted; remove the password and upload it again", code="unreadable_document"
        )
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    scanned = [index for index, text in enumerate(pages) if not text]
    if scanned:
        for index, text in zip(
            scanned, scans.read_pdf_pages(data, scanned, on_progress), strict=True
        ):
            pages[index] = text
    return "\n\n".join(pages)


def parse_docx(data: bytes, on_progress: Progress | None = None) -> str:
    from docx import Document
    from docx.table import Table

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        inflated = sum(info.file_size for info in archive.infolist())
    if inflated > MAX_UNZIPPED_BYTES:
        raise UnreadableDocument(
            f"it would inflate to {inflated:,} bytes; the limit is {MAX_UNZIPPED_BYTES:,}",
            code="file_too_large",
        )
    parts: list[str] = []
    for block in Document(io.BytesIO(data)).iter_inner_content():
        if isinstance(block, Table):
            parts.extend(" | ".join(cell.text for cell in row.cells) for row in block.rows)
        else:
            parts.append(block.text)
    return "\n".join(parts)


def parse_image(content_type: str) -> Callable[[bytes, Progress | None], str]:
    return lambda data, on_progress: scans.read_image(data, content_type, on_progress)


_PARSERS: dict[str, Callable[[bytes, Progress | None], str]] = {
    TEXT: decode_text,
    MARKDOWN: decode_text,
    HTML: parse_html,
    CSV: parse_csv,
    PDF: parse_pdf,
    DOCX: parse_docx,
} | {image: parse_image(image) for image in IMAGES}
