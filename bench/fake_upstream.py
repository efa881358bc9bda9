"""A fast fake OpenAI-compatible upstream for the gateway benchmark: raw asyncio HTTP/1.1 with
keep-alive, answering `POST /v1/chat/completions` at once (whole, or streamed as SSE when the
body asks for `"stream": true`) with usage, and `GET /healthz` for readiness.

It does as little as possible so that the upstream adds almost nothing to what is measured.
With `--delay-ms`, each chat answer waits that long first, as a model thinking would: what the
gateway adds can then overlap with the upstream's time, as it does in real use.

Usage: python bench/fake_upstream.py --port 9100 [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from functools import partial

MODEL = "fake-model"
REPLY = "Hello from the fake upstream."
USAGE = {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21}


def http_answer(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def _completion() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    ).encode()


def _stream() -> bytes:
    """Three SSE events: the content, the finish, and the usage (as `include_usage` asks)."""
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": MODEL}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": REPLY}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": USAGE},
    ]
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def respond(method: str, path: str, body: bytes) -> bytes:
    if method == "GET" and path in ("/healthz", "/v1/models"):
        return http_answer("200 OK", "application/json", b'{"object":"list","data":[]}')
    if method == "POST" and path.endswith("/chat/completions"):
        if b'"stream":true' in body.replace(b" ", b""):
            return http_answer("200 OK", "text/event-stream", _stream())
        return http_answer("200 OK", "application/json", _completion())
    return http_answer("404 Not Found", "application/json", b'{"error":{"message":"not found"}}')


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    """The next request on a keep-alive connection: method, path and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return method, path, body


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float
) -> None:
    try:
        while True:
            method, path, body = await read_request(reader)
            if delay_s and method == "POST":
                await asyncio.sleep(delay_s)
            writer.write(respond(method, path, body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, delay_s: float) -> None:
    serving = partial(_serve_connection, delay_s=delay_s)
    server = await asyncio.start_server(serving, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="before each chat answer")
    args = parser.parse_args()
    try:
        from uvloop import run
    except ImportError:
        from asyncio import run
    run(serve(args.host, args.port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
