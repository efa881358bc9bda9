"""httpx's interface on aiohttp's HTTP/1.1 client: the transport of every upstream call.

httpx's own transport (httpcore and h11, pure Python) costs about 0.7 ms of CPU per request
here, a third of what the whole gateway may add to a call; aiohttp's C-accelerated parser and
connection pool do the same work in about 0.15 ms. The providers keep httpx's API — requests,
responses, streaming, exceptions, and the test doubles built on `httpx.MockTransport` — and only
the wire changes.

The failures are translated so that the provider's retry rule stays true: only a connection that
was never made (`httpx.ConnectError`, `httpx.ConnectTimeout`) may be retried; a connection lost
after the request went out is a `httpx.ReadError` or `httpx.RemoteProtocolError`, never retried,
because the upstream may already have started generating. Proxies come from the usual
environment variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), as with httpx, read once per
upstream host: aiohttp's own `trust_env` re-reads the environment and the netrc file in a worker
thread on every request, a thread hop and a wait for the GIL on the hot path.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import cache

import aiohttp
import httpx

KEEPALIVE_S = 5.0
"""Shorter than the idle timeout of common servers (uvicorn and vLLM 5 s, nginx 75 s), so a
pooled connection is not reused just as the upstream closes it."""
MAX_CONNECTIONS = 100


@cache
def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for `scheme://host`, or None (also when NO_PROXY
    lists the host). The environment is fixed for the life of the process."""
    proxies = urllib.request.getproxies_environment()
    # Undocumented, so absent from typeshed; `proxy_bypass` reads the OS settings on macOS.
    if urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return proxies.get(scheme) or proxies.get("all")


@contextmanager
def _translated(request: httpx.Request) -> Iterator[None]:
    """aiohttp's failures as httpx's. aiohttp raises `ClientConnectorError` only while it
    connects; any other failure may come after the request went out."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error), request=request) from error
    except aiohttp.ClientConnectorError as error:
        raise httpx.ConnectError(str(error), request=request) from error
    except (TimeoutError, aiohttp.ServerTimeoutError) as error:
        raise httpx.ReadTimeout(str(error) or "read timed out", request=request) from error
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as error:
        message = str(error) or "the upstream closed the connection mid-response"
        raise httpx.RemoteProtocolError(message, request=request) from error
    except aiohttp.InvalidURL as error:
        raise httpx.UnsupportedProtocol(str(error), request=request) from error
    except aiohttp.ClientError as error:
        raise httpx.ReadError(str(error) or type(error).__name__, request=request) from error


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives (server-sent events are passed on piece by piece)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response, self._request = response, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translated(self._request):
            async for piece in self._response.content.iter_any():
                yield piece

    async def aclose(self) -> None:
        # A body read to the end hands the connection back to the pool; one left unread closes
        # it, so the next request never reads the rest of this one.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (its connection pool), opened on first use inside the event loop and
    closed for good by `aclose` (at shutdown): a call after that is refused as never sent,
    rather than opening a session nothing would close."""

    def __init__(
        self, *, max_connections: int = MAX_CONNECTIONS, keepalive_s: float = KEEPALIVE_S
    ) -> None:
        self._max_connections, self._keepalive_s = max_connections, keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_s,
                ssl=httpx.create_ssl_context(),  # the CA bundle httpx itself would trust
            )
            # httpx decodes content-encoding itself, from the headers it is given.
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the gateway is shutting down", request=request)
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        with _translated(request):
            response = await self._open().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                proxy=proxy_for(request.url.scheme, request.url.host),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
