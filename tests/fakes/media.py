"""Images, scans and recordings, made in memory (or read from tests/fixtures): pictures of known
text drawn with Pillow's bundled font, an image-only PDF, a spoken WAV made once with espeak-ng,
and the bad inputs an upload must refuse — bombs, lying headers, corrupt bytes."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

FIXTURES = Path(__file__).parent.parent / "fixtures"
SPOKEN = "The lighthouse keeper feeds the cats every Tuesday morning."
"""What tests/fixtures/speech.wav says, about four seconds made with `espeak-ng -v en-us -s 140
-w speech.wav "…"` and resampled to 16 kHz mono 16-bit (what Whisper reads)."""


def require_tesseract() -> None:
    """OCR tests need Debian's tesseract-ocr (`make test` installs it): a skip without it, a
    failure under CI=true."""
    if shutil.which("tesseract") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tesseract is required under CI=true (make test installs it with apt)")
        pytest.skip("tesseract-ocr is not installed (`make ocr-deps` installs it)")


def picture_of(lines: list[str], size: tuple[int, int] = (1400, 400)) -> Image.Image:
    """Black text on white, large enough for OCR to read every word."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for row, line in enumerate(lines):
        draw.text((40, 40 + row * 70), line, fill=0, font=font)
    return image


def image(lines: list[str], image_format: str = "PNG") -> bytes:
    out = io.BytesIO()
    picture_of(lines).save(out, format=image_format)
    return out.getvalue()


def scanned_pdf(*pages: list[str]) -> bytes:
    """A PDF of page images only, as a scanner makes: no text layer at all."""
    pictures = [picture_of(lines, (1240, 1754)) for lines in pages]
    out = io.BytesIO()
    pictures[0].save(out, format="PDF", resolution=150, save_all=True, append_images=pictures[1:])
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A real PNG of `width` × `height` black-and-white pixels, all zero: a few tens of
    kilobytes that inflate to width × height / 8 bytes."""
    squeezer = zlib.compressobj(9)
    rows = b"\x00" * (1 + (width + 7) // 8) * 500
    idat = b"".join(squeezer.compress(rows) for _ in range(height // 500)) + squeezer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def docx_bomb(inflated_bytes: int = 110 * 1024 * 1024) -> bytes:
    """A ZIP named like a Word file whose one member inflates to `inflated_bytes` of zeros."""
    out = io.BytesIO()
    block = b"\x00" * (1024 * 1024)
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("word/document.xml", "w", force_zip64=True) as member,
    ):
        for _ in range(inflated_bytes // len(block)):
            member.write(block)
    return out.getvalue()


def speech_wav() -> bytes:
    return (FIXTURES / "speech.wav").read_bytes()


def long_mp3(seconds: int) -> bytes:
    """An MP3 whose Info header counts the frames of `seconds` of audio, carrying four: its
    duration, and so its cost, is read from that header alone (three hours of real MP3 would
    not fit in an upload)."""
    mp3 = reencoded(speech_wav(), "mp3", "mp3")
    at = mp3.index(b"Info") + 8  # the tag, then 4 bytes of flags, then the frame count
    frames = seconds * 16_000 // 576  # MPEG-2 layer III at 16 kHz: 576 samples a frame
    return mp3[:at] + struct.pack(">I", frames) + mp3[at + 4 :]


def corrupt_mp3() -> bytes:
    """An ID3 tag followed by bytes that are no MPEG frame."""
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 16


def corrupt_wav() -> bytes:
    """A RIFF/WAVE header whose format chunk is garbage."""
    return b"RIFF" + struct.pack("<I", 1000) + b"WAVE" + b"fmt " + b"\xff" * 64


def reencoded(wav: bytes, container: str, codec: str) -> bytes:
    """The recording in another container and codec (`mp3`/`mp3`, `ipod`/`aac` for M4A)."""
    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(wav)) as source, av.open(out, "w", format=container) as target:
        stream = target.add_stream(codec, rate=16_000)
        for frame in source.decode(audio=0):
            frame.pts = None
            target.mux(stream.encode(frame))
        target.mux(stream.encode(None))
    return out.getvalue()
