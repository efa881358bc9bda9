"""The upstream transport over real sockets: bodies whole, streamed and compressed; a refused
connection is a connect error (the provider may retry it), a connection lost after the request
went out is not."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from quartermaster.providers.aiohttp_transport import AiohttpTransport, proxy_for

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


def _head(status: str, *headers: str) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


@asynccontextmanager
async def _serving(handler: Handler) -> AsyncIterator[str]:
    """A server on a free port; every connection it accepted is closed when the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=5) as http:
        yield http


async def test_a_whole_body_and_the_request_sent(client: httpx.AsyncClient) -> None:
    received: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # the same kept-alive connection twice
            received.append(await _read_request(reader))
            body = b'{"ok": true}'
            writer.write(_head("200 OK", f"content-length: {len(body)}") + body)
            await writer.drain()
        writer.close()

    async with _serving(echo) as url:
        for n in range(2):
            reply = await client.post(url + "/v1/chat/completions", json={"n": n})
            assert reply.status_code == 200
            assert reply.json() == {"ok": True}
    assert received == [b'{"n":0}', b'{"n":1}']


async def test_a_stream_arrives_piece_by_piece(client: httpx.AsyncClient) -> None:
    second_sent = asyncio.Event()

    async def events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_head("200 OK", "content-type: text/event-stream", "connection: close"))
        writer.write(b"data: one\n\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"data: two\n\n")
        second_sent.set()
        await writer.drain()
        writer.close()

    async with _serving(events) as url, client.stream("POST", url, json={}) as reply:
        lines = reply.aiter_lines()
        assert await anext(lines) == "data: one"
        assert not second_sent.is_set(), "the first event came before the second was sent"
        assert [line async for line in lines if line] == ["data: two"]


async def test_a_compressed_body_is_decoded_once(client: httpx.AsyncClient) -> None:
    payload = gzip.compress(b'{"greeting": "hello"}')

    async def zipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        head = _head("200 OK", "content-encoding: gzip", f"content-length: {len(payload)}")
        writer.write(head + payload)
        await writer.drain()
        writer.close()

    async with _serving(zipped) as url:
        assert (await client.post(url, json={})).json() == {"greeting": "hello"}


async def test_a_refused_connection_is_a_connect_error(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={})


async def test_a_connection_lost_mid_answer_is_not_a_connect_error(
    client: httpx.AsyncClient,
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_head("200 OK", "content-length: 100") + b'{"partial":')
        await writer.drain()
        writer.transport.abort()

    async with _serving(cut) as url:
        with pytest.raises(httpx.TransportError) as raised:
            await client.post(url, json={})
    assert not isinstance(raised.value, httpx.ConnectError | httpx.ConnectTimeout)


async def test_a_silent_upstream_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport, timeout=0.2) as http, _serving(silent) as url:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, json={})


async def test_a_closed_transport_refuses_calls_instead_of_reopening() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_head("200 OK", "content-length: 2") + b"{}")
        await writer.drain()

    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport, timeout=5) as http, _serving(answer) as url:
        assert (await http.post(url, json={})).status_code == 200
        await transport.aclose()
        with pytest.raises(httpx.ConnectError, match="shutting down"):
            await http.post(url, json={})
        assert transport._session is None  # nothing left open for the process to leak


def test_proxies_come_from_the_environment_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.corp.example")
    proxy_for.cache_clear()
    try:
        assert proxy_for("https", "api.openai.com") == "http://proxy.internal:3128"
        assert proxy_for("https", "vllm.corp.example") is None
        assert proxy_for("http", "127.0.0.1") is None
    finally:
        proxy_for.cache_clear()
