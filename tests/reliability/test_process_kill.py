"""kill -9 of a real `qm serve` in the middle of a streamed call, a whole call, and a dataset
ingestion: after a restart the dead call's hold expires (the new process's sweeper frees it
within QM_HOLD_TTL_S + QM_SWEEP_INTERVAL_S), nothing of it is charged or stored, nothing is
charged twice, and `qm ledger check` is clean."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from bench import qm_stack

from tests.reliability.stack import (
    HOLD_TTL_S,
    Ledger,
    chat_body,
    eventually,
    ledger_check,
    ledger_of,
    qm_serve,
)

SLOW_DOCUMENT = ("A slow document for the embedding model: fault:slow. " * 20).encode()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _call(http: httpx.AsyncClient, key: str, scenario: str, dataset_id: int) -> str:
    """The slow call of `scenario`, until it finishes or its connection is cut."""
    try:
        if scenario == "stream":
            body = chat_body("fault:slow", stream=True)
            async with http.stream(
                "POST", "/v1/chat/completions", json=body, headers=_auth(key)
            ) as r:
                async for _ in r.aiter_lines():
                    pass
        elif scenario == "whole":
            await http.post(
                "/v1/chat/completions", json=chat_body("fault:slow"), headers=_auth(key)
            )
        else:
            files = [("files", ("slow.txt", SLOW_DOCUMENT, "text/plain"))]
            await http.post(
                f"/api/datasets/{dataset_id}/documents", files=files, headers=_auth(key)
            )
    except httpx.TransportError:
        return "cut"
    return "finished"


async def _new_dataset(http: httpx.AsyncClient, key: str) -> int:
    body = {"name": "kill test", "embedding_model": qm_stack.EMBED_MODEL}
    created = await http.post("/api/datasets", json=body, headers=_auth(key))
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def _settled_call(http: httpx.AsyncClient, key: str) -> None:
    answer = await http.post("/v1/chat/completions", json=chat_body("hello"), headers=_auth(key))
    assert answer.status_code == 200, answer.text


def _pending(ledger: Ledger) -> set[str]:
    return {request for request, state in ledger.holds.items() if state == "pending"}


@pytest.mark.parametrize("scenario", ["stream", "whole", "ingest"])
async def test_kill_9_mid_call_leaves_no_hold_and_no_double_charge(
    scenario: str, shared_database: qm_stack.Database, gateway_env: dict[str, str], workdir: Path
) -> None:
    spec = qm_stack.TeamSpec(f"Kill {scenario}", inference_cap=100_000, training_cap=100_000)
    team = await qm_stack.with_context(shared_database.url, qm_stack.provision_team, spec)
    member, key = team.member_ids[0], team.member_keys[0]
    env = gateway_env
    with qm_serve(env, workdir, f"qm-{scenario}") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            dataset_id = await _new_dataset(http, key)
            await _settled_call(http, key)

            async def nothing_held() -> bool:
                return not _pending(await ledger_of(shared_database, member))

            # The answer goes out before its booking: until that lands, its own hold is the
            # pending one, and the slow call's (not yet taken, on a slow machine) is not.
            await eventually("the first call's booking", nothing_held, timeout_s=15)
            call = asyncio.create_task(_call(http, key, scenario, dataset_id))

            async def dead_call_held() -> bool:
                return len(_pending(await ledger_of(shared_database, member))) == 1

            await eventually("the slow call's hold", dead_call_held, timeout_s=15)
            await asyncio.sleep(0.5)  # well inside the call: it lasts 8 s at the upstream
            server.kill()
            assert await asyncio.wait_for(call, 10) == "cut"
    killed = await ledger_of(shared_database, member)
    (dead,) = _pending(killed)
    assert killed.reserved > 0
    assert dead not in killed.events
    with qm_serve(env, workdir, f"qm-{scenario}-restarted") as server:
        await eventually("the sweeper freeing the dead call", nothing_held, HOLD_TTL_S + 10)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await _settled_call(http, key)
            dataset = await http.get(f"/api/datasets/{dataset_id}", headers=_auth(key))
    after = await ledger_of(shared_database, member)
    assert after.holds[dead] == "expired"
    assert dead not in after.events
    assert len(after.events) == 2, "the call before the kill and the one after, once each"
    assert after.used == sum(after.events.values())
    assert after.reserved == 0
    assert dataset.json()["documents"] == []
    assert ledger_check(env, workdir) == {"ok": True, "differences": []}
