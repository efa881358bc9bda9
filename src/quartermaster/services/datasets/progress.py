"""Progress of an upload by work done: each step of ingestion reports `on_progress(stage, done,
total)` in its own unit (a file extracted, chunks embedded; OCR reports pages, transcription
seconds), and `UploadProgress` turns those calls, file after file, into ordered events with an
overall percentage that only grows and ends at 100.

The callback may be called from a worker thread (extraction runs in one): `ProgressQueue` hands
events to the one async reader in the order they were reported.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from quartermaster.domain.types import Progress

OnProgress = Progress
"""`on_progress(stage, done, total)`: `done` of `total` units of `stage` are finished (the type
lives in the domain, so that rag/ can report OCR's pages without importing services)."""

EXTRACTING = "extracting"
OCR = "ocr"
TRANSCRIBING = "transcribing"
EMBEDDING = "embedding"
DONE = "done"
UNITS = {EXTRACTING: "files", OCR: "pages", TRANSCRIBING: "seconds", EMBEDDING: "chunks"}
FINAL_STAGE = EMBEDDING
"""The last stage of a file: when it is done, so is the file."""


def ignore(stage: str, done: int, total: int) -> None:
    """The callback of callers that show no progress."""


@dataclass(frozen=True)
class ProgressEvent:
    file: str
    file_index: int
    files: int
    stage: str
    done: int
    total: int
    unit: str
    percent: float
    """Of the whole upload: files finished, plus the embedded share of the current one."""

    def as_dict(self) -> dict[str, Any]:
        return {"event": "progress"} | asdict(self)


class UploadProgress:
    """The progress of several files uploaded one after the other, reported to `emit`."""

    def __init__(self, files: int, emit: Callable[[ProgressEvent], None]) -> None:
        assert files > 0, "an upload has at least one file"
        self._files = files
        self._emit = emit
        self._index = -1
        self._name = ""
        self._percent = 0.0

    def start(self, name: str) -> OnProgress:
        """The callback for the next file's steps."""
        self._index += 1
        self._name = name
        return self._report

    def finish(self) -> None:
        """Every file is stored or refused: the last event, at 100 %."""
        self._index = self._files - 1
        self._percent = 100.0
        self._emit(ProgressEvent(self._name, self._index, self._files, DONE, 1, 1, "files", 100.0))

    def _report(self, stage: str, done: int, total: int) -> None:
        share = done / total if stage == FINAL_STAGE and total > 0 else 0.0
        percent = math.floor(1000 * (self._index + share) / self._files) / 10
        self._percent = max(self._percent, percent)
        unit = UNITS.get(stage, "steps")
        self._emit(
            ProgressEvent(
                self._name, self._index, self._files, stage, done, total, unit, self._percent
            )
        )


class ProgressQueue:
    """Events put from any thread, read in order by one coroutine until `close()`."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._queue: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()

    def put(self, event: ProgressEvent | None) -> None:
        if threading.get_ident() == self._thread:
            self._queue.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def close(self) -> None:
        self.put(None)

    async def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        while (event := await self._queue.get()) is not None:
            yield event
