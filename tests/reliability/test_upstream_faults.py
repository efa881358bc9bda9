"""An upstream that hangs, stalls mid-stream or resets the connection, behind a real `qm serve`:
the gateway cuts it off within the configured timeouts (504 upstream_timeout, 502 upstream_error;
for streams, an error event after the 200), releases the holds of calls that produced nothing,
charges a stalled stream for what it produced, and the ledger stays consistent."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench import qm_stack

from tests.reliability.stack import (
    READ_TIMEOUT_S,
    chat_body,
    ledger_check,
    qm_environment,
    qm_serve,
    settled_ledger_of,
)

CUT_OFF_S = 2 * READ_TIMEOUT_S
"""The read timeout, plus the gateway's own work on a loaded machine (a full suite beside other
work once took 4.54 s): far below the fault upstream's 60 s hang, which is what it tells apart."""


async def _whole(http: httpx.AsyncClient, fault: str) -> dict[str, Any]:
    reply = await http.post("/v1/chat/completions", json=chat_body(fault))
    return {"status": reply.status_code, "code": reply.json()["error"]["code"], "text": ""}


async def _streamed(http: httpx.AsyncClient, fault: str) -> dict[str, Any]:
    body = chat_body(fault, stream=True)
    events = []
    async with http.stream("POST", "/v1/chat/completions", json=body) as reply:
        async for line in reply.aiter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line.removeprefix("data: ")))
    errors = [event["error"]["code"] for event in events if "error" in event]
    text = "".join(
        choice["delta"].get("content", "")
        for event in events
        for choice in event.get("choices", [])
    )
    return {"status": reply.status_code, "code": errors[-1] if errors else None, "text": text}


@pytest.fixture(scope="module")
def gateway(
    shared_database: qm_stack.Database, upstream_url: str, workdir: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """One `qm serve` for the module; yields its URL and environment."""
    env = qm_environment(shared_database, upstream_url, workdir)
    with qm_serve(env, workdir, "qm-upstream-faults") as server:
        yield server.url, env


@pytest.mark.parametrize(
    ("call", "fault", "status", "code", "charged"),
    [
        (_whole, "fault:hang", 504, "upstream_timeout", False),
        (_streamed, "fault:hang", 200, "upstream_timeout", False),
        (_streamed, "fault:stall", 200, "upstream_timeout", True),
        (_whole, "fault:reset", 502, "upstream_error", False),
        (_streamed, "fault:reset", 200, "upstream_error", False),
    ],
)
async def test_a_hanging_or_resetting_upstream_is_cut_off_and_its_hold_resolved(
    call: Callable[[httpx.AsyncClient, str], Awaitable[dict[str, Any]]],
    fault: str,
    status: int,
    code: str,
    charged: bool,
    gateway: tuple[str, dict[str, str]],
    shared_database: qm_stack.Database,
    workdir: Path,
) -> None:
    url, env = gateway
    spec = qm_stack.TeamSpec(f"Upstream {fault}", inference_cap=100_000)
    team = await qm_stack.with_context(shared_database.url, qm_stack.provision_team, spec)
    headers = {"Authorization": f"Bearer {team.member_keys[0]}"}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        outcome = await call(http, fault)
    elapsed_s = time.monotonic() - started
    assert (outcome["status"], outcome["code"]) == (status, code)
    assert elapsed_s < CUT_OFF_S
    if fault != "fault:reset":
        assert elapsed_s >= READ_TIMEOUT_S - 0.1, "cut off by the timeout, not before"
    ledger = await settled_ledger_of(shared_database, team.member_ids[0])
    assert set(ledger.holds.values()) == {"settled" if charged else "released"}
    assert ledger.reserved == 0
    assert ledger.used == sum(ledger.events.values())
    assert (ledger.used > 0) is charged, "only a stream cut mid-way is charged, for what it made"
    assert outcome["text"] == ("stalled " if charged else "")
    assert ledger_check(env, workdir)["ok"]
