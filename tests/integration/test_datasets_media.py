"""Images, scans and recordings through the upload service, on both databases, with embeddings
and transcriptions from the fake upstream and OCR by the real Tesseract: what is charged, and
every bad input refused by name with nothing stored, nothing charged and nothing sent."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from sqlalchemy import select

from quartermaster.domain.errors import (
    DomainError,
    InvalidInput,
    QuotaExceeded,
    ServiceUnavailable,
)
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.services.context import Context
from quartermaster.services.datasets import ingestion
from quartermaster.services.datasets.transcription import TOKENS_PER_MINUTE
from quartermaster.store.models import Chunk, Document, Hold
from tests.e2e.gateway_fixtures import FAKE_UPSTREAM
from tests.fakes import documents, media
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import EMBEDDING
from tests.integration.test_datasets import owner_with_dataset, rows, training

SPEECH = "whisper-tiny-en"  # seeded enabled, served here by the fake upstream
SPEECH_RATE = 0.5
EMBEDDING_RATE = 0.5


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


def registry(fake: FakeUpstream, *, speech: bool = True) -> ProviderRegistry:
    models = {EMBEDDING: "fake-embed"} | ({SPEECH: "fake-whisper"} if speech else {})
    return ProviderRegistry(
        {
            name: OpenAIHTTPProvider(FAKE_UPSTREAM, upstream, transport=fake.transport())
            for name, upstream in models.items()
        }
    )


async def chunk_texts(ctx: Context, document_id: int) -> str:
    async with ctx.uow.begin(write=False) as tx:
        texts = await tx.session.scalars(select(Chunk.text).where(Chunk.document_id == document_id))
        return " ".join(texts)


async def test_the_text_of_an_image_is_stored_and_charged(ctx: Context, fake: FakeUpstream) -> None:
    media.require_tesseract()
    owner, dataset_id = await owner_with_dataset(ctx)
    picture = media.image(["Spare fuses are in", "the red cabinet."])
    stored = await ingestion.ingest(ctx, registry(fake), owner, dataset_id, "fuses.png", picture)
    assert stored.content_type == "image/png"
    assert "red cabinet" in await chunk_texts(ctx, stored.document_id)
    assert stored.tokens_charged > 0
    assert await training(ctx, owner.uid) == (stored.tokens_charged, 0)


async def test_a_recording_is_transcribed_and_both_costs_are_charged(
    ctx: Context, fake: FakeUpstream
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    reports: list[tuple[str, int, int]] = []
    stored = await ingestion.ingest(
        ctx,
        registry(fake),
        owner,
        dataset_id,
        "standup.wav",
        media.speech_wav(),
        lambda *report: reports.append(report),
    )
    assert await chunk_texts(ctx, stored.document_id) == fake.transcript
    assert reports[:2] == [("transcribing", 0, 4), ("transcribing", 4, 4)]
    assert {stage for stage, _, _ in reports[2:]} == {"embedding"}  # then the transcript's chunks
    assert reports[-1][1] == reports[-1][2]
    (sent,) = [r for r in fake.requests if r.url.path.endswith("/audio/transcriptions")]
    assert b'name="model"\r\n\r\nfake-whisper' in sent.content
    assert b'filename="standup.wav"' in sent.content
    heard = math.ceil(4.1 * TOKENS_PER_MINUTE / 60)
    embedded = math.ceil(min(len(fake.transcript.split()), stored.tokens) * EMBEDDING_RATE)
    assert stored.tokens_charged == math.ceil(heard * SPEECH_RATE) + embedded
    assert await training(ctx, owner.uid) == (stored.tokens_charged, 0)
    async with ctx.uow.begin(write=False) as tx:
        holds = (await tx.session.scalars(select(Hold).order_by(Hold.id))).all()
    assert [(h.request_id.split("-")[0], h.kind, h.state) for h in holds] == [
        ("transcribe", "training", "settled"),
        ("ingest", "training", "settled"),
    ]
    lasting_s = ctx.hold_ttl_s + 5  # kept a second longer a second of audio
    assert all((h.expires_at - h.created_at).total_seconds() == lasting_s for h in holds)


async def test_a_recording_is_refused_when_no_speech_model_is_configured(
    ctx: Context, fake: FakeUpstream
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    with pytest.raises(InvalidInput) as refused:
        await ingestion.ingest(
            ctx, registry(fake, speech=False), owner, dataset_id, "a.wav", media.speech_wav()
        )
    assert refused.value.code == "transcription_unavailable"
    assert refused.value.message.startswith("a.wav is audio, and no speech-to-text model")
    await nothing_happened(ctx, fake, owner.uid)


async def test_three_hours_of_audio_over_the_cap_is_refused_from_its_header(
    ctx: Context, fake: FakeUpstream
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx, training_cap=10_000)
    with pytest.raises(QuotaExceeded) as refused:
        await ingestion.ingest(
            ctx, registry(fake), owner, dataset_id, "offsite.mp3", media.long_mp3(3 * 3600)
        )
    assert refused.value.message.startswith(
        f"offsite.mp3 (180.0 minutes of audio, counted at {TOKENS_PER_MINUTE} tokens a minute): "
        "this upload or embedding needs"
    )
    assert refused.value.details["cap"] == 10_000
    await nothing_happened(ctx, fake, owner.uid)


async def test_a_failed_transcription_releases_both_holds(ctx: Context, fake: FakeUpstream) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    fake.error_status = 500
    with pytest.raises(ServiceUnavailable, match=r"^a\.wav: the speech model whisper-tiny-en"):
        await ingestion.ingest(ctx, registry(fake), owner, dataset_id, "a.wav", media.speech_wav())
    assert await training(ctx, owner.uid) == (0, 0)
    assert (await rows(ctx, Document), await rows(ctx, Chunk)) == (0, 0)


BAD: list[tuple[str, Callable[[], bytes], str]] = [
    ("photo.png", lambda: documents.pdf("A PDF in disguise."), "type_mismatch"),
    ("voice.wav", lambda: media.image(["Not a sound"]), "type_mismatch"),
    ("empty.png", lambda: b"", "empty_file"),
    ("empty.m4a", lambda: b"", "empty_file"),
    ("bomb.png", media.png_bomb, "image_too_large"),
    ("bomb.docx", media.docx_bomb, "file_too_large"),
    ("cut.jpg", lambda: media.image(["Cut short"], "JPEG")[:400], "unreadable_document"),
    ("noise.mp3", media.corrupt_mp3, "unreadable_document"),
    ("noise.wav", media.corrupt_wav, "unreadable_document"),
]
"""Each made when its test runs: the bombs take a moment to build."""


@pytest.mark.parametrize(("filename", "make", "code"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_is_refused_by_name_with_nothing_stored_or_charged(
    ctx: Context, fake: FakeUpstream, filename: str, make: Callable[[], bytes], code: str
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    with pytest.raises(DomainError) as refused:
        await ingestion.ingest(ctx, registry(fake), owner, dataset_id, filename, make())
    assert refused.value.code == code
    assert refused.value.message.startswith(filename)
    await nothing_happened(ctx, fake, owner.uid)


async def nothing_happened(ctx: Context, fake: FakeUpstream, user_id: int) -> None:
    assert fake.requests == []
    assert await training(ctx, user_id) == (0, 0)
    assert (await rows(ctx, Document), await rows(ctx, Chunk)) == (0, 0)
