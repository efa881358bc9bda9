"""What an audio file holds, read from its headers (PyAV) before anything is transcribed: its
duration, which bounds what transcribing and embedding it can cost, and that its first frame
decodes, so a corrupt recording is refused before any hold is taken.

Codes: unreadable_document, audio_too_long (UnreadableDocument).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

from quartermaster.rag.formats import UnreadableDocument

MAX_AUDIO_S = 4 * 3600
"""Per file: past this a transcription would hold the upload for longer than a person waits."""


@dataclass(frozen=True)
class Recording:
    duration_s: float

    @property
    def minutes(self) -> float:
        return self.duration_s / 60


def probe(data: bytes) -> Recording:
    """The recording's duration from its headers; refuses one with no decodable audio."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UnreadableDocument("it holds no audio track", code="unreadable_document")
            stream = container.streams.audio[0]
            duration_s = _duration_s(container.duration, stream.duration, stream.time_base)
            next(container.decode(stream))
    except (av.FFmpegError, StopIteration, UnicodeDecodeError) as exc:
        raise UnreadableDocument(
            f"its audio cannot be decoded ({type(exc).__name__}: {exc}); check that it plays "
            "and re-save it",
            code="unreadable_document",
        ) from None
    if duration_s > MAX_AUDIO_S:
        raise UnreadableDocument(
            f"it lasts {duration_s / 60:,.0f} minutes; the limit is {MAX_AUDIO_S // 60} a file",
            code="audio_too_long",
        )
    return Recording(duration_s)


def _duration_s(container_us: int | None, frames: int | None, time_base: Fraction | None) -> float:
    """The container's duration (in microseconds), else the stream's (in its time base)."""
    if container_us:
        return container_us / 1_000_000
    if frames and time_base is not None:
        return float(frames * time_base)
    raise UnreadableDocument("its headers give no duration", code="unreadable_document")
