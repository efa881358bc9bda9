"""rag/formats.py: a file is what its bytes say, or it is refused by name before any parser."""

from __future__ import annotations

import pytest

from quartermaster.rag import UnreadableDocument
from quartermaster.rag.formats import AUDIO, IMAGES, identify
from tests.fakes import documents, media


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("scan.png", media.image(["Hello"]), "image/png"),
        ("scan.JPG", media.image(["Hello"], "JPEG"), "image/jpeg"),
        ("scan.tiff", media.image(["Hello"], "TIFF"), "image/tiff"),
        ("talk.wav", media.speech_wav(), "audio/wav"),
        ("talk.mp3", media.corrupt_mp3(), "audio/mpeg"),
        ("report.pdf", documents.pdf("Hello"), "application/pdf"),
        ("notes.txt", b"plain words", "text/plain"),
    ],
)
def test_the_type_follows_the_suffix_when_the_bytes_agree(
    filename: str, data: bytes, expected: str
) -> None:
    assert identify(filename, data) == expected


@pytest.mark.parametrize(
    ("filename", "data", "found"),
    [
        ("photo.png", documents.pdf("I am a PDF"), "it holds a PDF"),
        ("talk.wav", media.image(["Hello"]), "it holds a PNG image"),
        ("memo.docx", media.speech_wav(), "it holds a WAV recording"),
        ("song.m4a", b"\x00" * 64, "its bytes are of no known format"),
        ("scan.jpg", media.image(["Hello"], "TIFF"), "it holds a TIFF image"),
    ],
)
def test_a_file_whose_name_lies_about_its_bytes_is_refused(
    filename: str, data: bytes, found: str
) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        identify(filename, data)
    assert refused.value.code == "type_mismatch"
    assert refused.value.message.startswith(f"{filename} is named as ")
    assert found in refused.value.message


@pytest.mark.parametrize("filename", ["empty.txt", "empty.png", "empty.wav"])
def test_an_empty_file_is_refused_by_name(filename: str) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        identify(filename, b"")
    assert refused.value.code == "empty_file"
    assert refused.value.message.startswith(f"{filename} is empty (0 bytes)")


def test_images_and_audio_are_told_apart() -> None:
    assert not IMAGES & AUDIO
