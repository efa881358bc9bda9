"""A request body larger than the server will hold is refused before it is read into memory:
with its length declared, at once; streamed without one, as soon as it passes the limit. The
refusal is a 413 in the route's error shape, and nothing was held, sent or charged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from quartermaster.http import body_limit
from quartermaster.services.context import Context
from tests.e2e.gateway_fixtures import fake, gateway, key_for
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
MIB = 1024 * 1024


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 1 MiB limit, so the test sends a few MiB rather than fifty."""
    monkeypatch.setattr(body_limit, "MAX_JSON_BYTES", MIB)
    return MIB


def _chat(padding: int) -> bytes:
    text = "x" * padding
    return (
        b'{"model":"' + CHAT.encode() + b'","max_tokens":5,'
        b'"messages":[{"role":"user","content":"' + text.encode() + b'"}]}'
    )


async def _streamed(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_over_the_limit_is_refused_with_413_and_nothing_charged(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream, small_limit: int, declared: bool
) -> None:
    member = await add_member(ctx, inference_cap=10_000_000)
    headers = {"Authorization": f"Bearer {await key_for(ctx, member.user_id)}"}
    headers["Content-Type"] = "application/json"
    body = _chat(2 * small_limit)
    content = body if declared else _streamed(body)
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://qm.test") as client:
        refused = await client.post("/v1/chat/completions", content=content, headers=headers)
        fine = await client.post("/v1/chat/completions", content=_chat(100), headers=headers)
    assert refused.status_code == 413
    assert "larger than 1,048,576 bytes" in refused.json()["error"]["message"]
    assert fine.status_code == 200
    assert len(fake.requests) == 1
    used, reserved = await counter(ctx, member.user_id, ctx.clock.now().strftime("%Y-%m"))
    assert (used, reserved) == (fine.json()["usage"]["tokens_charged"], 0)


def test_an_upload_may_carry_twenty_documents_and_json_fifty_mebibytes() -> None:
    form = {b"content-type": b"multipart/form-data; boundary=x"}
    assert body_limit.limit_for(form) == 210 * MIB
    assert body_limit.limit_for({b"content-type": b"application/json"}) == 50 * MIB
