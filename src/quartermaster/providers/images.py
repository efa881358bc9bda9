"""What an image in a chat costs, read from its own header: OpenAI's tile formula from the
image's pixel size, scaled to the model's most expensive image (the catalog's `image_tokens`).

Only the header is read (PNG, JPEG, GIF, WebP): no image library decodes the caller's bytes,
so a decompression bomb costs nothing to price. Bytes that are none of these are not an image.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

LOW_DETAIL_TOKENS = 85
TILE_TOKENS = 170
TILE_PX = 512
LONGEST_SIDE_PX = 2048
SHORTEST_SIDE_PX = 768
MOST_TILE_TOKENS = TILE_TOKENS * 8 + LOW_DETAIL_TOKENS
"""A 768 × 2048 image, the largest once scaled: 8 tiles (1,445 tokens on gpt-4o)."""
JPEG_SIZE_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""The start-of-frame markers (0xC4, 0xC8 and 0xCC are tables and a reserved code)."""


class NotAnImage(ValueError):
    """The bytes are not a PNG, JPEG, GIF or WebP image, or a data URL is malformed."""


def data_url_bytes(url: str) -> bytes:
    """The bytes of a `data:image/…;base64,…` URL."""
    head, _, data = url.partition(",")
    if not head.startswith("data:") or not head.endswith(";base64") or not data:
        raise NotAnImage("a data URL is data:image/<type>;base64,<data>")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotAnImage("the data URL's base64 is malformed") from exc


def pixel_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the image's header."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    raise NotAnImage("the bytes are not a PNG, JPEG, GIF or WebP image")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    raise NotAnImage("the WebP header is truncated or unknown")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walks the JPEG's segments to the frame header, which holds the size."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            raise NotAnImage("the JPEG's segments are corrupt")
        marker = data[at + 1]
        if marker in JPEG_SIZE_MARKERS:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    raise NotAnImage("the JPEG has no frame header")


def tile_tokens(width: int, height: int, detail: str) -> int:
    """OpenAI's count for gpt-4o: 85 at low detail; otherwise the image scaled to fit 2048 ×
    2048, then its shortest side to 768, and 170 per 512-pixel tile plus 85."""
    if detail == "low" or width < 1 or height < 1:
        return LOW_DETAIL_TOKENS
    fit = min(1.0, LONGEST_SIDE_PX / max(width, height))
    scaled = (width * fit, height * fit)
    scale = fit * min(1.0, SHORTEST_SIDE_PX / min(scaled))
    tiles = math.ceil(width * scale / TILE_PX) * math.ceil(height * scale / TILE_PX)
    return TILE_TOKENS * tiles + LOW_DETAIL_TOKENS


def image_tokens(width: int, height: int, detail: str, most: int) -> int:
    """The tile formula scaled so its largest value is the model's `most` (gpt-4o-mini's
    numbers are gpt-4o's × 33.3, so one formula serves both)."""
    return math.ceil(tile_tokens(width, height, detail) * most / MOST_TILE_TOKENS)
