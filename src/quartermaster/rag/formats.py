"""What a file is: its type from the name's suffix, confirmed by the first bytes.

A file whose suffix says one thing and whose bytes say another (a `.png` holding a PDF, a
`.wav` that is a ZIP archive) is refused before any parser reads it, and so is an empty one.
Text formats have no signature; their decoder refuses binary data.

Codes: unsupported_file_type, empty_file, type_mismatch.
"""

from __future__ import annotations

from pathlib import PurePath

from quartermaster.domain.errors import InvalidInput

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
CSV = "text/csv"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
WAV = "audio/wav"
MP3 = "audio/mpeg"
M4A = "audio/mp4"

CONTENT_TYPES = {
    ".txt": TEXT,
    ".text": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".csv": CSV,
    ".pdf": PDF,
    ".docx": DOCX,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".tif": TIFF,
    ".tiff": TIFF,
    ".wav": WAV,
    ".mp3": MP3,
    ".m4a": M4A,
}
SUPPORTED_SUFFIXES = tuple(CONTENT_TYPES)
IMAGES = frozenset({PNG, JPEG, TIFF})
AUDIO = frozenset({WAV, MP3, M4A})


class UnreadableDocument(InvalidInput):
    """The file was refused before anything was charged or stored; the message says why."""


def content_type_of(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    content_type = CONTENT_TYPES.get(suffix)
    if content_type is None:
        raise UnreadableDocument(
            f"{filename}: {suffix or 'files without a suffix'} cannot be read; upload "
            f"{', '.join(SUPPORTED_SUFFIXES)} files",
            param="files",
            code="unsupported_file_type",
        )
    return content_type


def _mp3(data: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame's 11 sync bits."""
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] >= 0xE0)


_SIGNATURES = {
    PDF: lambda data: data.startswith(b"%PDF-"),
    DOCX: lambda data: data.startswith(b"PK\x03\x04"),
    PNG: lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    JPEG: lambda data: data.startswith(b"\xff\xd8\xff"),
    TIFF: lambda data: data[:4] in (b"II*\x00", b"MM\x00*"),
    WAV: lambda data: data[:4] == b"RIFF" and data[8:12] == b"WAVE",
    MP3: _mp3,
    M4A: lambda data: data[4:8] == b"ftyp",
}
_NAMES = {
    PDF: "a PDF",
    DOCX: "a DOCX (ZIP) document",
    PNG: "a PNG image",
    JPEG: "a JPEG image",
    TIFF: "a TIFF image",
    WAV: "a WAV recording",
    MP3: "an MP3 recording",
    M4A: "an M4A recording",
}


def identify(filename: str, data: bytes) -> str:
    """The content type the name claims, once the bytes agree; refuses empty and lying files."""
    content_type = content_type_of(filename)
    if not data:
        raise UnreadableDocument(
            f"{filename} is empty (0 bytes); nothing was stored or charged",
            param="files",
            code="empty_file",
        )
    looks_right = _SIGNATURES.get(content_type)
    if looks_right is not None and not looks_right(data):
        actual = next((t for t, check in _SIGNATURES.items() if check(data)), None)
        found = f"it holds {_NAMES[actual]}" if actual else "its bytes are of no known format"
        raise UnreadableDocument(
            f"{filename} is named as {_NAMES[content_type]}, but {found}; rename it to its "
            "real type or re-save it",
            param="files",
            code="type_mismatch",
        )
    return content_type
