"""A fake OpenAI-compatible upstream that misbehaves when asked, for the fault tests and the soak.

It answers what `fake_upstream.py` answers, plus `POST /v1/embeddings` (8-dimensional vectors
derived from each text, no usage reported), and takes a fault from a marker anywhere in the
request body (the gateway forwards the messages, and a dataset's chunks, unchanged):

    fault:slow    chat streams SLOW_PIECES pieces, one every --slow-gap-s; a whole answer or
                  embeddings wait as long before answering
    fault:hang    reads the request and never answers (the connection is closed after --hang-s)
    fault:stall   streams one piece, then nothing more (closed after --hang-s)
    fault:reset   resets the connection (TCP RST) without answering

Every wait is bounded by --hang-s, so a test that forgets it cannot keep it busy for long.

Usage: python bench/fault_upstream.py --port 9101 [--slow-gap-s 0.2] [--hang-s 120]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

from fake_upstream import MODEL, http_answer, read_request, respond

SLOW_PIECES = 40
EMBED_DIMENSIONS = 8
# No length: the body ends when the connection closes.
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True)
class Timing:
    slow_gap_s: float
    hang_s: float


def fault_of(body: bytes) -> str | None:
    for fault in ("slow", "hang", "stall", "reset"):
        if b"fault:" + fault.encode() in body:
            return fault
    return None


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _piece(text: str | None, finish: str | None = None) -> bytes:
    delta = {} if text is None else {"content": text}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _event({"object": "chat.completion.chunk", "model": MODEL, "choices": [choice]})


def embeddings(body: bytes) -> bytes:
    """One unit-ish vector per input, the same for the same text."""
    inputs = json.loads(body)["input"]
    rows = []
    for index, text in enumerate([inputs] if isinstance(inputs, str) else inputs):
        digest = hashlib.sha256(str(text).encode()).digest()
        vector = [(byte - 127.5) / 127.5 for byte in digest[:EMBED_DIMENSIONS]]
        rows.append({"object": "embedding", "index": index, "embedding": vector})
    payload = {"object": "list", "data": rows, "model": "fake-embed"}
    return http_answer("200 OK", "application/json", json.dumps(payload).encode())


async def _slow_stream(writer: asyncio.StreamWriter, timing: Timing) -> None:
    writer.write(STREAM_HEAD)
    for index in range(SLOW_PIECES):
        writer.write(_piece("word " if index else "slow "))
        await writer.drain()
        await asyncio.sleep(timing.slow_gap_s)
    writer.write(_piece(None, "stop"))
    usage = {
        "prompt_tokens": 14,
        "completion_tokens": SLOW_PIECES,
        "total_tokens": 14 + SLOW_PIECES,
    }
    writer.write(_event({"object": "chat.completion.chunk", "choices": [], "usage": usage}))
    writer.write(b"data: [DONE]\n\n")
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _misbehave(
    fault: str, path: str, body: bytes, writer: asyncio.StreamWriter, timing: Timing
) -> bool:
    """Act out `fault`; True when the connection may carry another request."""
    streamed = path.endswith("/chat/completions") and b'"stream":true' in body.replace(b" ", b"")
    if fault == "reset":
        _reset(writer)
        return False
    if fault == "hang":
        await asyncio.sleep(timing.hang_s)
        return False
    if fault == "stall":
        writer.write(STREAM_HEAD + _piece("stalled "))
        await writer.drain()
        await asyncio.sleep(timing.hang_s)
        return False
    if streamed:
        await _slow_stream(writer, timing)
        return False
    await asyncio.sleep(timing.slow_gap_s * SLOW_PIECES)
    writer.write(_answer("POST", path, body))
    return True


def _answer(method: str, path: str, body: bytes) -> bytes:
    if method == "POST" and path.endswith("/embeddings"):
        return embeddings(body)
    return respond(method, path, body)


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timing: Timing
) -> None:
    keep_open = True
    try:
        while keep_open:
            method, path, body = await read_request(reader)
            fault = fault_of(body) if method == "POST" else None
            if fault is None:
                writer.write(_answer(method, path, body))
            else:
                keep_open = await _misbehave(fault, path, body, writer, timing)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(host: str, port: int, timing: Timing) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(reader, writer, timing)

    server = await asyncio.start_server(handle, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow-gap-s", type=float, default=0.2)
    parser.add_argument("--hang-s", type=float, default=120.0)
    args = parser.parse_args()
    assert args.host in ("127.0.0.1", "::1", "localhost"), "the fake upstream serves loopback only"
    asyncio.run(serve(args.host, args.port, Timing(args.slow_gap_s, args.hang_s)))


if __name__ == "__main__":
    main()
