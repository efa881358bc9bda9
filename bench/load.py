"""The load generator of the gateway benchmark: chat requests over httpx with keep-alive, either
paced (a fixed arrival rate, for latency at a moderate load) or saturating (a fixed number of
requests in flight, for requests per second). Both stop at a request count or a time cap.

The same chat goes by any of the gateway's routes: OpenAI's chat completions (what the upstream
itself speaks), OpenAI's Responses API or Anthropic's Messages API. A request counts as done
when its whole body has been read; one answered with anything but 200 and the route's answer is
counted as an error, not as a latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

PROMPT = "Say hello to the benchmark in five words."
MAX_TOKENS = 16
MAX_IN_FLIGHT = 256


ROUTES = {
    "chat": ("chat/completions", b'"choices"'),
    "responses": ("responses", b'"output"'),
    "messages": ("messages", b'"content"'),
}
"""Route → (path under the base URL, what every answer of it holds, whole or streamed)."""


@dataclass(frozen=True)
class Target:
    """Where to send chat requests: an OpenAI-compatible base URL, a key, a model name, and
    the route the chat goes by."""

    name: str
    base_url: str
    api_key: str
    model: str
    stream: bool = False
    route: str = "chat"

    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{ROUTES[self.route][0]}"

    def body(self) -> dict[str, Any]:
        said = [{"role": "user", "content": PROMPT}]
        if self.route == "responses":
            return {
                "model": self.model,
                "input": PROMPT,
                "max_output_tokens": MAX_TOKENS,
                "stream": self.stream,
            }
        body: dict[str, Any] = {"model": self.model, "messages": said, "max_tokens": MAX_TOKENS}
        body["stream"] = self.stream
        if self.stream and self.route == "chat":
            body["stream_options"] = {"include_usage": True}
        return body


@dataclass
class Outcome:
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def add(self, other: Outcome) -> None:
        """Pool another run of the same phase into this one."""
        self.latencies_s += other.latencies_s
        self.errors.update(other.errors)
        self.elapsed_s += other.elapsed_s

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        done = len(ordered)
        return {
            "requests": done,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "seconds": round(self.elapsed_s, 2),
            "rps": round(done / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": _ms(percentile(ordered, 50)),
            "p90_ms": _ms(percentile(ordered, 90)),
            "p99_ms": _ms(percentile(ordered, 99)),
            "mean_ms": _ms(sum(ordered) / done if done else math.nan),
        }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 2)


def client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0))


async def one_request(http: httpx.AsyncClient, target: Target, outcome: Outcome) -> None:
    url = target.url()
    headers = {"authorization": f"Bearer {target.api_key}"}
    start = time.perf_counter()
    try:
        async with http.stream("POST", url, json=target.body(), headers=headers) as response:
            body = await response.aread()
    except httpx.HTTPError as exc:
        outcome.errors[type(exc).__name__] += 1
        return
    latency = time.perf_counter() - start
    if response.status_code != 200:
        outcome.errors[f"http_{response.status_code}"] += 1
    elif ROUTES[target.route][1] not in body:
        outcome.errors[f"not_a_{target.route}_answer"] += 1
    else:
        outcome.latencies_s.append(latency)


async def paced(target: Target, rate: float, requests: int, time_cap_s: float) -> Outcome:
    """Send `requests` at `rate` per second (open loop), or fewer if `time_cap_s` runs out."""
    outcome = Outcome()
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def send(http: httpx.AsyncClient) -> None:
        async with in_flight:
            await one_request(http, target, outcome)

    async with client(MAX_IN_FLIGHT) as http:
        tasks = []
        start = time.perf_counter()
        for index in range(requests):
            due = start + index / rate
            if due - start > time_cap_s:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(send(http)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        outcome.elapsed_s = time.perf_counter() - start
    return outcome


async def saturate(target: Target, concurrency: int, requests: int, time_cap_s: float) -> Outcome:
    """Keep `concurrency` requests in flight until `requests` are sent or `time_cap_s` is up."""
    outcome = Outcome()
    remaining = [requests]
    start = time.perf_counter()
    deadline = start + time_cap_s

    async def worker(http: httpx.AsyncClient) -> None:
        while remaining[0] > 0 and time.perf_counter() < deadline:
            remaining[0] -= 1
            await one_request(http, target, outcome)

    async with client(concurrency) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        outcome.elapsed_s = time.perf_counter() - start
    return outcome
