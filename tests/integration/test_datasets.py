"""Datasets through the services, on both databases, with embeddings from the fake upstream:
metering of uploads, refusals that store and charge nothing, deletion, sharing, search."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select

from quartermaster.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    ServiceUnavailable,
)
from quartermaster.domain.principal import Principal
from quartermaster.providers.openai_http import OpenAIHTTPProvider
from quartermaster.providers.registry import ProviderRegistry
from quartermaster.rag import NumpyIndex, UnreadableDocument
from quartermaster.services import datasets
from quartermaster.services.context import Context
from quartermaster.services.datasets import ingestion, retrieval
from quartermaster.store.models import AuditEvent, Chunk, Document, UsageEvent
from tests.e2e.gateway_fixtures import FAKE_UPSTREAM
from tests.factories import add_org, add_user
from tests.fakes import documents
from tests.fakes.upstream import FakeUpstream
from tests.integration.ledger_fixtures import EMBEDDING, add_member
from tests.integration.test_ledger import counter

TRAINING_RATE = 0.5  # the seeded all-minilm-l6-v2


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def providers(fake: FakeUpstream) -> ProviderRegistry:
    embed = OpenAIHTTPProvider(FAKE_UPSTREAM, "fake-embed", transport=fake.transport())
    return ProviderRegistry({EMBEDDING: embed})


def member(user_id: int) -> Principal:
    return Principal(user_id, is_operator=False, mfa_verified=False, via="api_key")


async def training(ctx: Context, user_id: int) -> tuple[int, int]:
    return await counter(ctx, user_id, ctx.clock.now().strftime("%Y-%m"), "training")


async def rows(ctx: Context, model: type[Chunk] | type[Document]) -> int:
    async with ctx.uow.begin(write=False) as tx:
        return int(await tx.session.scalar(select(func.count()).select_from(model)) or 0)


async def owner_with_dataset(ctx: Context, training_cap: int = 10_000) -> tuple[Principal, int]:
    owner = member((await add_member(ctx, training_cap=training_cap)).user_id)
    return owner, (await datasets.create(ctx, owner, "Handbook")).id


FILES = {
    "notes.txt": b"The boiler is serviced every May by the caretaker.",
    "guide.md": b"# Parking\n\nVisitors park on level two of the garage.",
    "page.html": documents.html("Tides", "High tide at Port Ellery is at six."),
    "staff.csv": documents.csv(["name", "role"], ["Ann Lee", "mayor"], ["Bo Chan", "clerk"]),
    "report.pdf": documents.pdf("Quarterly revenue rose by four percent."),
    "memo.docx": documents.docx("The office closes at noon on Fridays."),
}


async def test_each_file_type_is_stored_and_charged_as_training_tokens(
    ctx: Context, providers: ProviderRegistry, fake: FakeUpstream
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    charged = 0
    for filename, data in FILES.items():
        stored = await ingestion.ingest(ctx, providers, owner, dataset_id, filename, data)
        texts = fake.bodies()[-1]["input"]
        reported = sum(len(text.split()) for text in texts)  # the fake's usage: words
        assert stored.tokens == sum(ingestion.tokenizer_for_model("x").count(t) for t in texts)
        assert stored.tokens_charged == math.ceil(min(reported, stored.tokens) * TRAINING_RATE)
        charged += stored.tokens_charged
    assert await training(ctx, owner.uid) == (charged, 0)
    view = await datasets.get(ctx, owner, dataset_id)
    assert [d["filename"] for d in view["documents"]] == list(FILES)
    assert view["chunk_count"] == len(FILES)


async def test_an_upload_over_the_cap_is_refused_up_front_with_what_is_left(
    ctx: Context, providers: ProviderRegistry, fake: FakeUpstream
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx, training_cap=40)
    text = " ".join(f"Line {i} of a long manual about pumps." for i in range(100)).encode()
    with pytest.raises(QuotaExceeded) as refused:
        await ingestion.ingest(ctx, providers, owner, dataset_id, "manual.txt", text)
    assert refused.value.details["tokens_left"] == 40
    assert refused.value.details["tokens_needed"] > 40
    needed = f"{refused.value.details['tokens_needed']:,} training tokens"
    assert refused.value.message.startswith(f"manual.txt: this upload or embedding needs {needed}")
    assert "send less" in refused.value.message
    assert "max_tokens" not in refused.value.message
    assert fake.requests == []  # nothing was embedded
    assert await training(ctx, owner.uid) == (0, 0)
    assert (await rows(ctx, Document), await rows(ctx, Chunk)) == (0, 0)


async def test_a_corrupt_pdf_is_refused_with_the_reason_and_nothing_is_charged(
    ctx: Context, providers: ProviderRegistry
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    with pytest.raises(UnreadableDocument, match=r"cut\.pdf cannot be read"):
        await ingestion.ingest(
            ctx, providers, owner, dataset_id, "cut.pdf", documents.corrupt_pdf()
        )
    assert await training(ctx, owner.uid) == (0, 0)
    assert await rows(ctx, Document) == 0


async def test_a_duplicate_file_is_refused_and_not_charged_again(
    ctx: Context, providers: ProviderRegistry
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    first = await ingestion.ingest(ctx, providers, owner, dataset_id, "a.txt", FILES["notes.txt"])
    with pytest.raises(Conflict) as refused:
        await ingestion.ingest(ctx, providers, owner, dataset_id, "copy.txt", FILES["notes.txt"])
    assert refused.value.code == "duplicate_document"
    assert refused.value.details == {"document_id": first.document_id}
    assert await training(ctx, owner.uid) == (first.tokens_charged, 0)
    assert await rows(ctx, Document) == 1


async def test_an_embedding_failure_releases_the_hold_and_stores_nothing(
    ctx: Context, providers: ProviderRegistry, fake: FakeUpstream
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    fake.error_status = 500
    with pytest.raises(ServiceUnavailable, match="nothing was stored or charged"):
        await ingestion.ingest(ctx, providers, owner, dataset_id, "a.txt", FILES["notes.txt"])
    assert await training(ctx, owner.uid) == (0, 0)
    assert (await rows(ctx, Document), await rows(ctx, Chunk)) == (0, 0)


async def test_deleting_a_dataset_removes_its_chunks_and_keeps_its_usage(
    ctx: Context, providers: ProviderRegistry
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    stored = await ingestion.ingest(ctx, providers, owner, dataset_id, "a.txt", FILES["notes.txt"])
    await datasets.update(ctx, owner, dataset_id, name="Renamed")
    await datasets.remove(ctx, owner, dataset_id)
    assert (await rows(ctx, Document), await rows(ctx, Chunk)) == (0, 0)
    assert await datasets.list_datasets(ctx, owner) == []
    assert await training(ctx, owner.uid) == (stored.tokens_charged, 0)
    async with ctx.uow.begin(write=False) as tx:
        actions = list(await tx.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        usage = list(await tx.session.scalars(select(UsageEvent.kind)))
    assert [a for a in actions if a.startswith("dataset.")] == [
        "dataset.create",
        "dataset.upload",
        "dataset.rename",
        "dataset.delete",
    ]
    assert usage == ["training"]


async def test_a_shared_dataset_is_readable_by_the_org_and_changed_only_by_its_owner(
    ctx: Context, providers: ProviderRegistry
) -> None:
    org = await add_org(ctx, admins=1, members=2)
    owner, colleague = member(org.member_ids[0]), member(org.member_ids[1])
    outsider = member(await add_user(ctx))
    dataset_id = (await datasets.create(ctx, owner, "Team notes")).id
    await ingestion.ingest(ctx, providers, owner, dataset_id, "a.txt", FILES["notes.txt"])
    with pytest.raises(NotFound):
        await retrieval.search(ctx, providers, colleague, [dataset_id], "boiler")
    await datasets.update(ctx, owner, dataset_id, shared_with_org=True)
    found = await retrieval.search(ctx, providers, colleague, [dataset_id], "boiler")
    assert [p.document for p in found] == ["a.txt"]
    assert [(v.id, v.owned) for v in await datasets.list_datasets(ctx, colleague)] == [
        (dataset_id, False)
    ]
    with pytest.raises(PermissionDenied):
        await ingestion.ingest(ctx, providers, colleague, dataset_id, "b.md", FILES["guide.md"])
    with pytest.raises(PermissionDenied):
        await datasets.remove(ctx, colleague, dataset_id)
    with pytest.raises(NotFound):
        await retrieval.search(ctx, providers, outsider, [dataset_id], "boiler")
    assert await datasets.list_datasets(ctx, outsider) == []


async def test_search_sees_an_upload_made_through_another_process(
    ctx: Context, providers: ProviderRegistry
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    this_process, other_process = NumpyIndex(), NumpyIndex()
    await ingestion.ingest(ctx, providers, owner, dataset_id, "a.txt", FILES["notes.txt"])
    text = FILES["guide.md"].decode()
    before = await retrieval.search(ctx, providers, owner, [dataset_id], text, index=this_process)
    assert [p.document for p in before] == ["a.txt"]
    await ingestion.ingest(ctx, providers, owner, dataset_id, "b.md", FILES["guide.md"])
    await retrieval.search(ctx, providers, owner, [dataset_id], text, index=other_process)
    after = await retrieval.search(ctx, providers, owner, [dataset_id], text, index=this_process)
    assert after[0].document == "b.md"  # the fake embeds equal texts equally: score 1
    assert after[0].score == pytest.approx(1.0)


async def test_an_upload_is_booked_by_the_datasets_route_and_a_search_by_its_own(
    ctx: Context, providers: ProviderRegistry
) -> None:
    owner, dataset_id = await owner_with_dataset(ctx)
    await ingestion.ingest(ctx, providers, owner, dataset_id, "a.txt", FILES["notes.txt"])
    await retrieval.search(ctx, providers, owner, [dataset_id], "When is the boiler serviced?")
    async with ctx.uow.begin(write=False) as tx:
        booked = await tx.session.execute(
            select(UsageEvent.request_id, UsageEvent.route).where(UsageEvent.user_id == owner.uid)
        )
        routes = {request_id.split("-")[0]: route for request_id, route in booked}
    assert routes == {"ingest": "datasets", "query": "search"}
