import itertools

from sqlalchemy import select, update

from quartermaster.services import audit
from quartermaster.services.audit import trail
from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent


async def _append(ctx: Context, action: str) -> None:
    async with ctx.uow.begin() as tx:
        entry = audit.AuditEntry(action=action, target_type="thing", after={"n": action})
        await audit.record(tx.session, entry, ctx.clock.now())
        await tx.commit()


async def _events(ctx: Context) -> list[AuditEvent]:
    async with ctx.uow.begin(write=False) as tx:
        return list(await tx.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def test_each_event_links_to_the_one_before(ctx: Context) -> None:
    for action in ("a.one", "a.two", "a.three"):
        await _append(ctx, action)
    events = await _events(ctx)
    assert [e.action for e in events[-3:]] == ["a.one", "a.two", "a.three"]
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    for event in events:
        assert event.hash == trail.event_hash(event.prev_hash, trail.hashed_fields(event))


async def test_editing_an_event_breaks_its_hash(ctx: Context) -> None:
    await _append(ctx, "b.one")
    async with ctx.uow.begin() as tx:
        await tx.session.execute(update(AuditEvent).values(action="b.forged"))
        await tx.commit()
    event = (await _events(ctx))[-1]
    assert event.hash != trail.event_hash(event.prev_hash, trail.hashed_fields(event))
