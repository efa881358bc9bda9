"""Images, scans and speech uploaded over HTTP to the real stack: Tesseract reads the pictures,
the embedded Whisper model transcribes the recordings, and the embedded all-MiniLM-L6-v2 finds
each by a question about it."""

from __future__ import annotations

from fastapi import FastAPI

from quartermaster.services.context import Context
from tests.e2e.gateway_fixtures import fake, gateway
from tests.e2e.test_datasets_api import new_member
from tests.fakes import documents, media
from tests.integration.test_ledger import counter

__all__ = ["fake", "gateway"]

QUESTIONS = {
    "Where is the key to the boiler room?": {"key.png"},
    "Which plants grow in the greenhouse?": {"scan.pdf"},
    "Who feeds the cats?": {"keeper.wav", "keeper.mp3"},
}


async def test_pictures_scans_and_speech_are_found_by_search(app: FastAPI, ctx: Context) -> None:
    media.require_tesseract()
    ann = await new_member(app, ctx)
    dataset_id = await ann.dataset()
    speech = media.speech_wav()
    uploaded = await ann.upload(
        dataset_id,
        ("key.png", media.image(["The boiler room key hangs", "behind the blue door."])),
        ("scan.pdf", media.scanned_pdf(["The greenhouse grows", "tomatoes and orchids."])),
        ("keeper.wav", speech),
        ("keeper.mp3", media.reencoded(speech, "mp3", "mp3")),
        ("tides.pdf", documents.pdf("High tide at Port Ellery harbour comes at six.")),
        ("menu.txt", b"Lunch is soup and bread; dessert is apple pie."),
    )
    assert uploaded.status_code == 201, uploaded.text
    results = {r["file"]: r for r in uploaded.json()["results"]}
    assert all(r["tokens_charged"] > 0 for r in results.values())
    assert results["keeper.mp3"]["content_type"] == "audio/mpeg"
    url = f"/api/datasets/{dataset_id}/search"
    for question, expected in QUESTIONS.items():
        found = (await ann.http.get(url, params={"q": question, "k": 6})).json()["results"]
        assert {hit["document"] for hit in found[: len(expected)]} == expected, (question, found)


async def test_bad_media_is_refused_by_name_over_http_with_nothing_stored(
    gateway: FastAPI, ctx: Context
) -> None:
    ann = await new_member(gateway, ctx)
    dataset_id = await ann.dataset()
    response = await ann.upload(
        dataset_id,
        ("photo.png", documents.pdf("A PDF in disguise.")),
        ("huge.png", media.png_bomb()),
        ("silence.wav", b""),
    )
    assert response.status_code == 400, response.text
    results = response.json()["error"]["results"]
    assert [(r["file"], r["error"]["code"]) for r in results] == [
        ("photo.png", "type_mismatch"),
        ("huge.png", "image_too_large"),
        ("silence.wav", "empty_file"),
    ]
    assert all(r["error"]["message"].startswith(r["file"]) for r in results)
    listed = (await ann.http.get(f"/api/datasets/{dataset_id}")).json()
    assert listed["documents"] == []
    assert await counter(ctx, ann.user_id, "2026-11", "training") == (0, 0)


async def test_a_speech_model_is_refused_as_a_chat_model(gateway: FastAPI, ctx: Context) -> None:
    ann = await new_member(gateway, ctx)
    body = {"model": "whisper-tiny-en", "messages": [{"role": "user", "content": "Hi"}]}
    reply = await ann.http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["message"] == (
        "whisper-tiny-en is a transcription model: it transcribes audio uploaded to datasets"
    )
