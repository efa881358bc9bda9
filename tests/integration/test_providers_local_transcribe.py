"""The embedded speech model, for real: Whisper tiny.en through faster-whisper, offline, on a
spoken WAV made with espeak-ng and the same recording as MP3 and M4A."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from quartermaster.providers import (
    LocalTranscribeProvider,
    ProviderRejected,
    TranscriptionRequest,
)
from tests.fakes import media


@pytest.fixture(scope="module")
def whisper() -> LocalTranscribeProvider:
    return LocalTranscribeProvider()


def spoken_words(text: str) -> list[str]:
    return [word.strip(".,'").lower() for word in text.replace("'s", "s").split()]


@pytest.mark.parametrize(
    ("filename", "make"),
    [
        ("a.wav", media.speech_wav),
        ("a.mp3", lambda: media.reencoded(media.speech_wav(), "mp3", "mp3")),
        ("a.m4a", lambda: media.reencoded(media.speech_wav(), "ipod", "aac")),
    ],
)
async def test_speech_is_transcribed_offline_with_progress_in_seconds(
    whisper: LocalTranscribeProvider, filename: str, make: Callable[[], bytes]
) -> None:
    reports: list[tuple[str, int, int]] = []
    request = TranscriptionRequest(make(), filename, 4.1, lambda *r: reports.append(r))
    transcript = await whisper.transcribe(request)
    assert spoken_words(transcript.text) == spoken_words(media.SPOKEN)
    assert transcript.model == "whisper-tiny.en"
    assert reports[-1] == ("transcribing", 4, 4)
    assert all(stage == "transcribing" and done <= total for stage, done, total in reports)


async def test_it_neither_chats_nor_embeds(whisper: LocalTranscribeProvider) -> None:
    with pytest.raises(ProviderRejected, match="does not support embeddings"):
        await whisper.embed(["hello"])
