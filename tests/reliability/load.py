"""Metered calls from a few clients until told to stop, each recorded with its times, status,
error code and (answered) request id, so a test can judge what happened during a fault."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from tests.reliability.stack import chat_body

MAX_CALLS = 3_000
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Call:
    gateway: str
    started: float
    ended: float
    status: int
    code: str | None
    """The error's code; None for a 200."""
    request_id: str | None
    """The answer's id, which is the hold's and the usage event's request id; None for errors."""


@dataclass
class Load:
    """Calls from clients until `stop` is set (bounded in count and time)."""

    calls: list[Call] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def client(self, http: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self.stop.is_set() and len(self.calls) < MAX_CALLS:
            assert time.monotonic() < deadline, "the load ran past its time limit"
            started = time.monotonic()
            reply = await http.post("/v1/chat/completions", json=chat_body("hello"))
            self.calls.append(_call(str(http.base_url).rstrip("/"), started, reply))
            await asyncio.sleep(0.02)

    def between(self, start: float, end: float) -> list[Call]:
        """The calls that started and ended inside [start, end]."""
        return [call for call in self.calls if call.started >= start and call.ended <= end]

    def answers(self) -> set[str]:
        """The request ids of the calls answered 200."""
        return {call.request_id for call in self.calls if call.request_id is not None}

    def answered(self, status: int, *, after: float = 0.0, gateway: str | None = None) -> bool:
        """Whether a call started after `after` (at `gateway`, or any) was answered `status`."""
        return any(
            call.status == status and call.started > after and gateway in (None, call.gateway)
            for call in self.calls
        )


def _call(gateway: str, started: float, reply: httpx.Response) -> Call:
    ended = time.monotonic()
    if reply.status_code == 200:
        return Call(gateway, started, ended, 200, None, str(reply.json()["id"]))
    try:
        code = str(reply.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = f"not an error object: {reply.text[:80]!r}"
    return Call(gateway, started, ended, reply.status_code, code, None)
