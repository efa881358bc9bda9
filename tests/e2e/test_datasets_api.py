"""/api/datasets and chat with datasets over HTTP, with the fake upstream's embeddings: batches
where one file fails, refusals, who may see what, and references in chat answers."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from quartermaster.providers.base import ChatMessage
from quartermaster.providers.tokenizer import tokenizer_for_model
from quartermaster.services.context import Context
from tests.e2e.gateway_fixtures import fake, gateway, key_for, openai_client
from tests.factories import add_org
from tests.fakes import documents
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import CHAT, add_member
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]
BOILER = b"The boiler in the east wing is serviced every May by the caretaker."
PARKING = b"# Parking\n\nVisitors park on level two of the north garage."


class Member:
    def __init__(self, app: FastAPI, user_id: int, key: str) -> None:
        self.user_id = user_id
        self.key = key
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://qm.test",
            headers={"Authorization": f"Bearer {key}"},
        )

    async def dataset(self, name: str = "Handbook", **fields: object) -> int:
        response = await self.http.post("/api/datasets", json={"name": name, **fields})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def upload(self, dataset_id: int, *files: tuple[str, bytes]) -> httpx.Response:
        parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
        return await self.http.post(f"/api/datasets/{dataset_id}/documents", files=parts)


async def new_member(app: FastAPI, ctx: Context, user_id: int | None = None) -> Member:
    if user_id is None:
        user_id = (await add_member(ctx, inference_cap=100_000, training_cap=100_000)).user_id
    return Member(app, user_id, await key_for(ctx, user_id))


async def test_a_batch_stores_the_good_files_and_names_the_bad_one(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    response = await ann.upload(
        dataset_id,
        ("boiler.txt", BOILER),
        ("cut.pdf", documents.corrupt_pdf()),
        ("memo.docx", documents.docx("The office closes at noon on Fridays.")),
    )
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [(r["file"], r["status_code"]) for r in results] == [
        ("boiler.txt", 201),
        ("cut.pdf", 400),
        ("memo.docx", 201),
    ]
    assert "cut.pdf cannot be read" in results[1]["error"]["message"]
    listed = (await ann.http.get(f"/api/datasets/{dataset_id}")).json()
    assert [d["filename"] for d in listed["documents"]] == ["boiler.txt", "memo.docx"]
    used, _ = await counter(ctx, ann.user_id, "2026-11", "training")
    assert used == sum(r["tokens_charged"] for r in results if r["status"] == "stored")


async def test_an_upload_with_nothing_stored_answers_with_the_first_refusal(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    assert (await ann.upload(dataset_id, ("boiler.txt", BOILER))).status_code == 201
    again = await ann.upload(dataset_id, ("copy.txt", BOILER), ("x.exe", b"MZ"))
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "duplicate_document"
    assert [r["error"]["code"] for r in error["results"]] == [
        "duplicate_document",
        "unsupported_file_type",
    ]


async def test_search_returns_the_nearest_chunks_with_their_document(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    await ann.upload(dataset_id, ("boiler.txt", BOILER), ("parking.md", PARKING))
    query = PARKING.decode()  # the fake embeds equal texts equally: the chunk scores 1
    found = await ann.http.get(f"/api/datasets/{dataset_id}/search", params={"q": query, "k": 1})
    assert found.status_code == 200, found.text
    (best,) = found.json()["results"]
    assert best["document"] == "parking.md"
    assert best["score"] == pytest.approx(1.0)
    too_many = await ann.http.get(f"/api/datasets/{dataset_id}/search", params={"q": "x", "k": 0})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["param"] == "k"


async def test_other_people_cannot_see_or_change_a_dataset(gateway: FastAPI, ctx: Context) -> None:
    ann, bob = await new_member(gateway, ctx), await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    url = f"/api/datasets/{dataset_id}"
    attempts = [
        await bob.http.get(url),
        await bob.http.patch(url, json={"name": "Mine now"}),
        await bob.http.delete(url),
        await bob.upload(dataset_id, ("boiler.txt", BOILER)),
        await bob.http.get(f"{url}/search", params={"q": "boiler"}),
    ]
    assert [r.status_code for r in attempts] == [404] * 5
    assert (await bob.http.get("/api/datasets")).json() == []
    assert (await ann.http.get(url)).json()["name"] == "Handbook"


async def test_org_members_read_a_shared_dataset_but_only_the_owner_changes_it(
    gateway: FastAPI, ctx: Context
) -> None:
    org = await add_org(ctx, admins=1, members=2)
    ann = await new_member(gateway, ctx, org.member_ids[0])
    bob = await new_member(gateway, ctx, org.member_ids[1])
    dataset_id = await ann.dataset("Team", shared_with_org=True)
    await ann.upload(dataset_id, ("boiler.txt", BOILER))
    url = f"/api/datasets/{dataset_id}"
    assert (await bob.http.get(url)).json()["owned"] is False
    assert (await bob.http.get(f"{url}/search", params={"q": "boiler"})).status_code == 200
    assert (await bob.http.patch(url, json={"name": "Mine"})).status_code == 403
    assert (await bob.upload(dataset_id, ("parking.md", PARKING))).status_code == 403
    assert (await ann.http.patch(url, json={"shared_with_org": False})).status_code == 200
    assert (await bob.http.get(url)).status_code == 404


CHAT_TOKENIZER = tokenizer_for_model("SmolLM2-135M-Instruct")


def _prompt_tokens(sent: list[dict[str, str]]) -> int:
    return CHAT_TOKENIZER.count_messages([ChatMessage(m["role"], m["content"]) for m in sent])


async def test_a_chat_with_datasets_cites_and_charges_the_passages(
    gateway: FastAPI, ctx: Context, fake: FakeUpstream
) -> None:
    fake.report_usage = False  # the gateway counts the prompt it sent, passages included
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    await ann.upload(dataset_id, ("boiler.txt", BOILER))
    question = [{"role": "user", "content": "When is the boiler serviced?"}]
    async with openai_client(gateway, ann.key) as client:
        answer = await client.chat.completions.create(
            model=CHAT, messages=question, max_tokens=20, extra_body={"datasets": [dataset_id]}
        )
    (reference,) = (answer.model_extra or {})["references"]
    assert (reference["index"], reference["document"]) == (1, "boiler.txt")
    assert reference["text"] == BOILER.decode()
    sent = fake.bodies()[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert f"[1] boiler.txt\n{BOILER.decode()}" in sent[0]["content"]
    used, reserved = await counter(ctx, ann.user_id, "2026-11")
    assert (used, reserved) == (_prompt_tokens(sent) + CHAT_TOKENIZER.count(fake.reply), 0)


async def test_a_streamed_chat_with_datasets_sends_references_on_its_final_chunk(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    await ann.upload(dataset_id, ("boiler.txt", BOILER))
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "boiler?"}],
        "stream": True,
        "datasets": [dataset_id],
    }
    response = await ann.http.post("/v1/chat/completions", json=body)
    events = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")
    ]
    final = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert [r["document"] for r in final[0]["references"]] == ["boiler.txt"]
    assert all("references" not in e for e in events if e not in final)


async def test_a_chat_naming_someone_elses_dataset_is_refused_before_any_charge(
    gateway: FastAPI, ctx: Context
) -> None:
    ann, bob = await new_member(gateway, ctx), await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    body = {
        "model": CHAT,
        "messages": [{"role": "user", "content": "hi"}],
        "datasets": [dataset_id],
    }
    response = await bob.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "dataset_not_found"
    assert await counter(ctx, bob.user_id, "2026-11") == (0, 0)
