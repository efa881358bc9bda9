"""rag/audio.py: a recording's duration comes from its headers; corrupt audio is refused."""

from __future__ import annotations

import pytest

from quartermaster.rag import UnreadableDocument, probe
from tests.fakes import media


def test_the_duration_is_read_from_the_header() -> None:
    assert probe(media.speech_wav()).duration_s == pytest.approx(4.1, abs=0.2)
    assert probe(media.long_mp3(3 * 3600)).minutes == pytest.approx(180, abs=0.1)


@pytest.mark.parametrize("data", [media.corrupt_mp3(), media.corrupt_wav()])
def test_corrupt_audio_is_refused(data: bytes) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        probe(data)
    assert refused.value.code == "unreadable_document"
    assert "cannot be decoded" in refused.value.message


def test_a_recording_past_the_file_limit_is_refused() -> None:
    with pytest.raises(UnreadableDocument) as refused:
        probe(media.long_mp3(5 * 3600))
    assert refused.value.code == "audio_too_long"
