"""The most a request body may carry, enforced before the body is read: a client cannot make
the server hold gigabytes in memory. A declared length above the limit is refused at once; a
body streamed without one is counted as it arrives and refused when it passes the limit. Both
are 413 in the route's error shape, and nothing has been done with the request yet.

JSON bodies may hold images and audio (as base64), so their limit is OpenAI's own request size;
a multipart upload may hold `MAX_FILES` documents of `MAX_FILE_BYTES` each.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_BYTES = 50 * 1024 * 1024
MAX_UPLOAD_BYTES = 210 * 1024 * 1024
"""Twenty 10 MiB documents and the form around them (api/datasets.py)."""


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes; send less at once")


def limit_for(headers: dict[bytes, bytes]) -> int:
    kind = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return MAX_UPLOAD_BYTES if kind == b"multipart/form-data" else MAX_JSON_BYTES


class BodyLimit:
    """ASGI middleware; the refusal is raised from `receive`, inside the app, so the app's own
    error handlers give it the route's shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = limit_for(headers)
        declared = headers.get(b"content-length", b"")
        too_long = declared.isdigit() and int(declared) > limit
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            if too_long:
                raise BodyTooLarge(limit)
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
