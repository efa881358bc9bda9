"""Uploads streamed as NDJSON progress (api/dataset_uploads.py) and one document deleted, through
the API with the fake upstream's embeddings: events in order ending at 100 %, refusals before the
stream starts, the same final result as the plain JSON reply, and a deleted document gone from
search while its charge stays."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent
from tests.e2e.gateway_fixtures import fake, gateway
from tests.e2e.test_datasets_api import BOILER, PARKING, Member, new_member
from tests.fakes import documents
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
NDJSON = {"Accept": "application/x-ndjson"}
WORDS = ("harbour", "ledger", "valve", "pump", "north")
WORDS += ("wing", "caretaker", "schedule", "invoice", "tide")


def long_text(sentences: int) -> bytes:
    """Enough distinct sentences for several batches of 32 chunks."""
    lines = (
        f"Line {i}: the {WORDS[i % 10]} near the {WORDS[(i * 7) % 10]}." for i in range(sentences)
    )
    return " ".join(lines).encode()


async def streamed(member: Member, dataset_id: int, *files: tuple[str, bytes]) -> httpx.Response:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    url = f"/api/datasets/{dataset_id}/documents"
    return await member.http.post(url, files=parts, headers=NDJSON)


def events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("application/x-ndjson"), response.text
    return [json.loads(line) for line in response.text.splitlines()]


async def training_used(ctx: Context, member: Member) -> int:
    used, _ = await counter(ctx, member.user_id, ctx.clock.now().strftime("%Y-%m"), "training")
    return used


async def test_progress_events_arrive_in_order_and_end_at_100(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    response = await streamed(
        ann, dataset_id, ("long.txt", long_text(4000)), ("boiler.txt", BOILER)
    )
    assert response.status_code == 200
    *progress, final = events(response)
    assert {e["event"] for e in progress} == {"progress"}
    percents = [e["percent"] for e in progress]
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    long_steps = [(e["stage"], e["done"]) for e in progress if e["file"] == "long.txt"]
    embedded = [done for stage, done in long_steps if stage == "embedding"]
    assert long_steps[:2] == [("extracting", 0), ("extracting", 1)]
    assert len(embedded) > 3  # one event per batch of 32 chunks, from 0
    assert embedded == sorted(embedded)
    assert embedded[-1] == progress[len(long_steps) - 1]["total"]
    assert final["event"] == "result"
    assert (final["status_code"], final["percent"]) == (201, 100.0)
    assert [r["file"] for r in final["results"]] == ["long.txt", "boiler.txt"]
    assert await training_used(ctx, ann) == sum(r["tokens_charged"] for r in final["results"])


async def test_a_stream_with_nothing_stored_ends_with_the_error(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    response = await streamed(ann, dataset_id, ("cut.pdf", documents.corrupt_pdf()))
    *_, final = events(response)
    assert (final["event"], final["status_code"], final["percent"]) == ("error", 400, 100.0)
    assert final["error"]["code"] == "unreadable_document"
    assert [r["status"] for r in final["error"]["results"]] == ["refused"]
    assert await training_used(ctx, ann) == 0


async def test_refusals_come_before_the_stream_as_plain_json(
    gateway: FastAPI, ctx: Context
) -> None:
    ann, bob = await new_member(gateway, ctx), await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    too_many = await streamed(ann, dataset_id, *[(f"{i}.txt", b"x") for i in range(21)])
    not_yours = await streamed(bob, dataset_id, ("boiler.txt", BOILER))
    assert (too_many.status_code, not_yours.status_code) == (400, 404)
    for refused in (too_many, not_yours):
        assert refused.headers["content-type"] == "application/json"
        assert "error" in refused.json()
    assert await training_used(ctx, bob) == 0
    assert (await ann.http.get(f"/api/datasets/{dataset_id}")).json()["documents"] == []


async def test_a_deleted_document_leaves_search_and_its_charge_stays(
    gateway: FastAPI, ctx: Context
) -> None:
    ann, bob = await new_member(gateway, ctx), await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    stored = (await ann.upload(dataset_id, ("boiler.txt", BOILER), ("parking.md", PARKING))).json()
    boiler_id = stored["results"][0]["document_id"]
    charged = await training_used(ctx, ann)
    url = f"/api/datasets/{dataset_id}/documents/{boiler_id}"

    assert (await bob.http.delete(url)).status_code == 404
    assert (await ann.http.delete(url)).status_code == 204
    again = await ann.http.delete(url)
    assert (again.status_code, again.json()["error"]["code"]) == (404, "document_not_found")
    assert await training_used(ctx, ann) == charged  # before the search below is charged too

    search = f"/api/datasets/{dataset_id}/search"
    found = (await ann.http.get(search, params={"q": BOILER.decode(), "k": 5})).json()
    assert {hit["document"] for hit in found["results"]} == {"parking.md"}
    listed = (await ann.http.get(f"/api/datasets/{dataset_id}")).json()
    assert [d["filename"] for d in listed["documents"]] == ["parking.md"]
    async with ctx.uow.begin(write=False) as tx:
        audited = await tx.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "dataset.document_delete",
                AuditEvent.target_id == str(dataset_id),
            )
        )
    assert audited is not None
    assert audited.before["filename"] == "boiler.txt"
