"""Upload progress by work done: events in order, a percentage that only grows and ends at 100,
and events reported from a worker thread read in the order they were put."""

from __future__ import annotations

import asyncio

import anyio

from quartermaster.services.datasets import progress
from quartermaster.services.datasets.progress import ProgressEvent, UploadProgress


def test_two_files_count_by_chunks_embedded_and_end_at_100() -> None:
    seen: list[ProgressEvent] = []
    upload = UploadProgress(2, seen.append)
    first = upload.start("a.txt")
    first(progress.EXTRACTING, 0, 1)
    first(progress.EXTRACTING, 1, 1)
    first(progress.EMBEDDING, 0, 64)
    first(progress.EMBEDDING, 32, 64)
    first(progress.EMBEDDING, 64, 64)
    second = upload.start("b.pdf")
    second(progress.OCR, 3, 10)
    second(progress.EMBEDDING, 10, 10)
    upload.finish()
    assert [(e.file, e.stage, e.done, e.total, e.unit, e.percent) for e in seen] == [
        ("a.txt", "extracting", 0, 1, "files", 0.0),
        ("a.txt", "extracting", 1, 1, "files", 0.0),
        ("a.txt", "embedding", 0, 64, "chunks", 0.0),
        ("a.txt", "embedding", 32, 64, "chunks", 25.0),
        ("a.txt", "embedding", 64, 64, "chunks", 50.0),
        ("b.pdf", "ocr", 3, 10, "pages", 50.0),
        ("b.pdf", "embedding", 10, 10, "chunks", 100.0),
        ("b.pdf", "done", 1, 1, "files", 100.0),
    ]
    assert seen[-1].as_dict()["event"] == "progress"


def test_a_refused_file_never_takes_the_percentage_back() -> None:
    seen: list[ProgressEvent] = []
    upload = UploadProgress(3, seen.append)
    upload.start("a.txt")(progress.EMBEDDING, 5, 5)
    upload.start("bad.pdf")(progress.EXTRACTING, 0, 1)  # refused while extracting
    upload.start("c.txt")(progress.EMBEDDING, 0, 4)
    percents = [e.percent for e in seen]
    assert percents == sorted(percents)
    assert percents == [33.3, 33.3, 66.6]


async def test_events_put_from_a_worker_thread_keep_their_order() -> None:
    queue = progress.ProgressQueue()
    upload = UploadProgress(1, queue.put)
    on_progress = upload.start("scan.png")

    def ocr() -> None:
        for page in range(1, 51):
            on_progress(progress.OCR, page, 50)

    async def work() -> None:
        on_progress(progress.EXTRACTING, 0, 1)
        await anyio.to_thread.run_sync(ocr)
        on_progress(progress.EMBEDDING, 1, 1)
        queue.close()

    task = asyncio.create_task(work())
    events = [event async for event in queue]
    await task
    assert [e.done for e in events] == [0, *range(1, 51), 1]
    assert events[-1].percent == 100.0
