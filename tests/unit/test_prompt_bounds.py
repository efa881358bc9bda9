"""What a chat's prompt is held at: images priced from their own header, tools and tool calls
counted, media bounded, and the rule that refuses what a model cannot do."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from quartermaster.domain.capabilities import Asks, Can, require_capable
from quartermaster.domain.errors import InvalidInput
from quartermaster.providers import images
from quartermaster.providers.prompt_count import MediaBounds, count_prompt
from quartermaster.providers.tokenizer import BpeTokenizer

TOKENIZER = BpeTokenizer()
BOUNDS = MediaBounds(image_tokens=1445, context_window=128_000)
HELLO = [{"role": "user", "content": "Hello there"}]


def png_head(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height)


def gif_head(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height)


def jpeg_head(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    frame = b"\xff\xc0" + struct.pack(">HBHH", 11, 8, height, width) + b"\x03"
    return b"\xff\xd8" + app0 + frame


def webp_head(width: int, height: int) -> bytes:
    sizes = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 8 + sizes


@pytest.mark.parametrize("head", [png_head, gif_head, jpeg_head, webp_head])
def test_the_pixel_size_is_read_from_the_header(head: Any) -> None:
    assert images.pixel_size(head(1600, 900)) == (1600, 900)


UNKNOWN_WEBP_CHUNK = b"RIFF\x04\x00\x00\x00WEBPJUNK"
"""A WebP container whose first chunk is none of VP8, VP8L and VP8X, which hold the size."""
TRUNCATED_JPEG = b"\xff\xd8\xff\xe0"


@pytest.mark.parametrize("data", [b"", b"hello world", TRUNCATED_JPEG, UNKNOWN_WEBP_CHUNK])
def test_bytes_that_are_no_image_are_refused(data: bytes) -> None:
    with pytest.raises(images.NotAnImage):
        images.pixel_size(data)


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((1024, 1024), "high", 765),  # 768 × 768: 4 tiles (OpenAI's worked example)
        ((2048, 4096), "high", 1105),  # 1024 × 2048, then 768 × 1536: 6 tiles
        ((4096, 8192), "auto", 1105),
        ((512, 512), "high", 255),
        ((20_000, 20_000), "high", 765),
        ((4096, 4096), "low", 85),
    ],
)
def test_the_tile_formula_matches_openais_examples(
    size: tuple[int, int], detail: str, tokens: int
) -> None:
    assert images.tile_tokens(*size, detail) == tokens


def test_the_formula_scales_to_the_models_most_expensive_image() -> None:
    """gpt-4o-mini's numbers are gpt-4o's × 33.3: 2,833 + 5,667 per tile."""
    assert images.image_tokens(1024, 1024, "high", 48_169) >= 2_833 + 4 * 5_667
    assert images.image_tokens(768, 2048, "high", 48_169) == 48_169


def _image(url: str, detail: str = "high") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


def _data_url(head: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(head).decode()


def test_an_image_in_the_request_is_held_by_its_size_and_one_by_url_at_the_most() -> None:
    text = count_prompt(TOKENIZER, {"messages": HELLO}, BOUNDS)
    inline = {"role": "user", "content": [_image(_data_url(png_head(1024, 1024)))]}
    linked = {"role": "user", "content": [_image("https://example.test/cat.png")]}
    assert count_prompt(TOKENIZER, {"messages": [*HELLO, inline]}, BOUNDS).media == 765
    assert count_prompt(TOKENIZER, {"messages": [*HELLO, linked]}, BOUNDS).media == 1445
    assert count_prompt(TOKENIZER, {"messages": HELLO}, BOUNDS) == text


def test_a_broken_image_names_its_place() -> None:
    broken = {"role": "user", "content": [{"type": "text", "text": "?"}, _image("data:x")]}
    with pytest.raises(InvalidInput) as refused:
        count_prompt(TOKENIZER, {"messages": [*HELLO, broken]}, BOUNDS)
    assert refused.value.param == "messages[1].content[1].image_url"


def test_tools_tool_calls_and_a_schema_add_to_the_prompt() -> None:
    plain = count_prompt(TOKENIZER, {"messages": HELLO}, BOUNDS).text
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
    conversation = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "noon"},
    ]
    schema = {"type": "json_schema", "json_schema": {"name": "t", "schema": {"type": "object"}}}
    with_tools = count_prompt(TOKENIZER, {"messages": HELLO, "tools": [tool]}, BOUNDS).text
    with_calls = count_prompt(TOKENIZER, {"messages": conversation}, BOUNDS).text
    with_schema = count_prompt(TOKENIZER, {"messages": HELLO, "response_format": schema}, BOUNDS)
    assert with_tools > plain + TOKENIZER.count('"name":"now"')
    assert with_calls > plain + 2 * 3  # two more framed messages, plus the call itself
    assert with_schema.text > plain


def test_audio_and_files_are_bounded_not_counted() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "A" * 40_000, "format": "wav"}}
    file = {"type": "file", "file": {"file_id": "file-1"}}
    message = {"role": "user", "content": [audio, file]}
    counted = count_prompt(TOKENIZER, {"messages": [message]}, BOUNDS)
    assert counted.media == 300 + BOUNDS.context_window  # 30,000 bytes at 100 a token


def test_a_model_is_refused_what_it_cannot_do_naming_field_model_and_flag() -> None:
    with pytest.raises(InvalidInput) as refused:
        require_capable("tiny", Can(), Asks(vision="messages[0].content[1]"))
    assert refused.value.param == "messages[0].content[1]"
    assert "tiny does not take images" in refused.value.message
    assert "qm models set tiny --vision" in refused.value.message
    with pytest.raises(InvalidInput, match="at most 2 choices"):
        require_capable("m", Can(max_choices=2), Asks(choices=3))
    require_capable("m", Can(tools=True, vision=True, max_choices=2), Asks("tools", "x", choices=2))
