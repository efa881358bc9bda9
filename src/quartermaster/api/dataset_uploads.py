"""Uploads into a dataset answered two ways: one JSON reply when every file is done, or, for a
client that sends `Accept: application/x-ndjson`, a stream of JSON lines while they are worked
on — progress events by work done (services/datasets/progress.py), then one final event:

    {"event": "progress", "file": "a.pdf", "file_index": 0, "files": 1, "stage": "embedding",
     "done": 64, "total": 120, "unit": "chunks", "percent": 53.3}
    {"event": "result", "status_code": 201, "results": [...], "percent": 100.0}

The final event carries what the JSON reply would have: `result` with the status and a result per
file, or `error` with the status and the error object (the first refusal, with every file's
result in `error.results`; or a 500 when the server failed mid-way). The route refuses what can
be refused before any work (too many files, a dataset the caller may not fill, a model not
served) with a plain 4xx before the stream starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Any

from fastapi import Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from quartermaster.domain.errors import DomainError
from quartermaster.domain.principal import Principal
from quartermaster.http.errors import error_body, from_domain
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.rag import MAX_FILE_BYTES
from quartermaster.services.context import Context
from quartermaster.services.datasets import ingestion, progress

NDJSON = "application/x-ndjson"
log = logging.getLogger(__name__)


def wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("accept", "")


@dataclass(frozen=True)
class Upload:
    ctx: Context
    providers: ProviderRegistry
    caller: Principal
    dataset_id: int
    files: list[tuple[str, bytes]]

    async def run(self, progress_of: progress.UploadProgress | None = None) -> list[dict[str, Any]]:
        """A result per file, in order; each file is stored or refused alone."""
        results = []
        for name, data in self.files:
            on_progress = progress_of.start(name) if progress_of else progress.ignore
            results.append(await self._one(name, data, on_progress))
        return results

    async def _one(
        self, name: str, data: bytes, on_progress: progress.OnProgress
    ) -> dict[str, Any]:
        try:
            ingested = await ingestion.ingest(
                self.ctx, self.providers, self.caller, self.dataset_id, name, data, on_progress
            )
        except DomainError as exc:
            response = from_domain(exc)
            error = json.loads(bytes(response.body))["error"]
            status = response.status_code
            return {"file": name, "status": "refused", "status_code": status, "error": error}
        return {"file": name, "status": "stored", "status_code": 201, **ingested.as_dict()}


async def read_files(files: list[UploadFile]) -> list[tuple[str, bytes]]:
    """Every file's name and bytes, read before any answer starts (a stream outlives the form)."""
    return [(file.filename or "upload", await file.read(MAX_FILE_BYTES + 1)) for file in files]


def outcome(results: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """The status and body of the whole upload: 201 all stored, 207 some, else the first
    refusal with every file's result."""
    stored = sum(result["status"] == "stored" for result in results)
    if stored:
        return (201 if stored == len(results) else 207), {"results": results}
    first = results[0]
    return first["status_code"], {"error": first["error"] | {"results": results}}


async def answered(upload: Upload) -> JSONResponse:
    status, body = outcome(await upload.run())
    return JSONResponse(body, status_code=status)


def streamed(upload: Upload) -> StreamingResponse:
    return StreamingResponse(_lines(upload), media_type=NDJSON)


async def _lines(upload: Upload) -> AsyncIterator[bytes]:
    # Closing this generator (the client left) must close the events' too, at once: their
    # `finally` cancels the work and waits for its hold to be released.
    async with aclosing(_events(upload)) as events:
        async for event in events:
            yield json.dumps(event, default=str).encode() + b"\n"


async def _events(upload: Upload) -> AsyncGenerator[dict[str, Any]]:
    """Progress events as they are reported, then the final one. A client that leaves cancels
    the work: the file being embedded is released, uncharged."""
    queue = progress.ProgressQueue()
    work = asyncio.create_task(upload.run(progress.UploadProgress(len(upload.files), queue.put)))
    work.add_done_callback(lambda _: queue.close())
    try:
        async for event in queue:
            yield event.as_dict()
        yield _final(work)
    finally:
        if not work.done():  # a finished one's outcome, failure included, is in the last event
            work.cancel()
            with suppress(asyncio.CancelledError):
                await work


def _final(work: asyncio.Task[list[dict[str, Any]]]) -> dict[str, Any]:
    try:
        status, body = outcome(work.result())
    except Exception:
        log.exception("an upload failed while streaming its progress")
        status = 500
        body = error_body("internal error; the operator's log has the details", "api_error")
    kind = "error" if "error" in body else "result"
    return {"event": kind, "status_code": status, **body, "percent": 100.0}
