"""The floor of the gateway benchmark: the thinnest proxy on Quartermaster's own serving stack
(uvicorn with uvloop and httptools, a raw ASGI app, an aiohttp client pool to the upstream),
with no authentication, no validation and no metering.

With `--database`, each call first makes one write round trip to PostgreSQL (a single-row
UPDATE in autocommit, as the hold's statement is), so the floor includes what the cheapest
possible cap check costs. What either adds over a direct call is what any Python gateway pays on
this machine for the extra hops alone; the rest of Quartermaster's overhead is its own work.

Usage: python bench/bare_proxy.py --port 9200 --upstream http://127.0.0.1:9100/v1
       [--database postgresql://postgres@127.0.0.1:5432/some_throwaway_database]
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
COUNTER_TABLE = """CREATE TABLE IF NOT EXISTS bare_counter (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO bare_counter VALUES (1, 0) ON CONFLICT DO NOTHING"""
TAKE = "UPDATE bare_counter SET n = n + 1 WHERE id = 1"


class BareProxy:
    """POST /v1/chat/completions forwarded as is (one write first, with a database); GET
    /healthz for readiness."""

    def __init__(self, upstream: str, database: str | None) -> None:
        self._url = f"{upstream.rstrip('/')}/chat/completions"
        self._dsn = database
        self._session: aiohttp.ClientSession | None = None
        self._pool: asyncpg.Pool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["path"] == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}', "application/json")
        else:
            await self._forward(await _body(receive), send)

    async def _forward(self, body: bytes, send: Send) -> None:
        if self._pool is not None:
            await self._pool.execute(TAKE)
        assert self._session is not None, "started by the lifespan"
        headers = {"content-type": "application/json"}
        async with self._session.post(self._url, data=body, headers=headers) as reply:
            content_type = reply.headers.get("content-type", "application/json")
            await _answer(send, reply.status, await reply.read(), content_type)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        if self._dsn:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=8)
            await self._pool.execute(COUNTER_TABLE)
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self._session.close()
        if self._pool is not None:
            await self._pool.close()
        await send({"type": "lifespan.shutdown.complete"})


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, content_type: str) -> None:
    """The whole body at once (the fake upstream sends a stream's events at once too)."""
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's /v1 base URL")
    parser.add_argument("--database", help="a PostgreSQL URL: one write round trip per call")
    args = parser.parse_args()
    app = BareProxy(args.upstream, args.database)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
