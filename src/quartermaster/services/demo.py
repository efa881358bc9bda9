"""Demo data for `make run` and `qm demo`: one enterprise, its people, purchases, caps and a few
months of usage, all written through the same booking path as real calls. Loading is idempotent;
each run issues a fresh API key per demo user (revoking the previous demo keys)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.periods import period_of, period_start, shift_period
from quartermaster.domain.rates import inference_charge, training_charge
from quartermaster.domain.types import ModelKind, PurchaseKind, Role, Term, TokenKind
from quartermaster.services import api_keys, audit, catalog, ledger
from quartermaster.services.accounts import Registration, find_user_by_email, register
from quartermaster.services.context import Context
from quartermaster.store.models import (
    Allocation,
    ApiKey,
    Membership,
    ModelCatalogEntry,
    Organization,
    Purchase,
)

DEMO_ORG = "Acme Research"
DEMO_PASSWORD = "harbor-lantern-42"  # noqa: S105 - printed for the demo on purpose
DEMO_KEY_NAME = "demo"
HISTORY_MONTHS = 4


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str
    max_inference_tokens: int = 0
    max_training_tokens: int = 0


PEOPLE = (
    DemoPerson("ops@quartermaster.example", "Olivia Operator", "operator"),
    DemoPerson("alice@acme.example", "Alice Admin", Role.ADMIN, 3_000_000, 500_000),
    DemoPerson("bob@acme.example", "Bob Admin", Role.ADMIN, 3_000_000, 500_000),
    DemoPerson("carol@acme.example", "Carol Chen", Role.MEMBER, 2_000_000, 500_000),
    DemoPerson("dave@acme.example", "Dave Diaz", Role.MEMBER, 2_000_000, 500_000),
    DemoPerson("erin@acme.example", "Erin Evans", Role.MEMBER, 2_000_000, 500_000),
    DemoPerson("frank@acme.example", "Frank Fox", Role.MEMBER, 2_000_000, 500_000),
)


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: str
    password: str
    api_key: str


async def load(ctx: Context) -> list[DemoLogin]:
    """Load the demo once, then issue one fresh API key per demo person; returns the logins."""
    await catalog.seed(ctx, catalog.default_specs())
    user_ids = {}
    for person in PEOPLE:
        user_ids[person.email] = await _ensure_user(ctx, person)
    async with ctx.uow.begin() as tx:
        exists = await tx.session.scalar(
            select(Organization.id).where(Organization.name == DEMO_ORG)
        )
        if exists is None:
            await _load_enterprise(tx.session, ctx.clock.now(), user_ids)
        logins = [
            await _fresh_login(tx.session, person, user_ids[person.email], ctx.clock.now())
            for person in PEOPLE
        ]
        await tx.commit()
    return logins


async def _ensure_user(ctx: Context, person: DemoPerson) -> int:
    async with ctx.uow.begin(write=False) as tx:
        user = await find_user_by_email(tx.session, person.email)
        if user is not None:
            return user.id
    form = Registration(
        email=person.email,
        password=DEMO_PASSWORD,
        name=person.name,
        accept_terms=True,
        is_operator=person.role == "operator",
    )
    return await register(ctx, form)


async def _fresh_login(
    session: AsyncSession, person: DemoPerson, user_id: int, now: datetime
) -> DemoLogin:
    await session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.name == DEMO_KEY_NAME, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    key = await api_keys.issue(session, user_id, DEMO_KEY_NAME, now)
    return DemoLogin(person.email, person.name, str(person.role), DEMO_PASSWORD, key.secret)


async def _load_enterprise(session: AsyncSession, now: datetime, user_ids: dict[str, int]) -> None:
    first_period = shift_period(period_of(now), -HISTORY_MONTHS)
    start = period_start(first_period)
    org = Organization(
        name=DEMO_ORG, billing_address="1 Research Way, Springfield", created_at=start
    )
    session.add(org)
    await session.flush()
    await _add_purchases(session, org.id, start.date(), now)
    members = [p for p in PEOPLE if p.role != "operator"]
    for person in members:
        membership = Membership(
            org_id=org.id,
            user_id=user_ids[person.email],
            active_user_id=user_ids[person.email],
            role=str(person.role),
            joined_at=start,
        )
        session.add(membership)
        await session.flush()
        session.add(
            Allocation(
                membership_id=membership.id,
                org_id=org.id,
                max_inference_tokens=person.max_inference_tokens,
                max_training_tokens=person.max_training_tokens,
                updated_at=start,
            )
        )
    await audit.record(
        session,
        audit.AuditEntry(
            action="demo.load",
            org_id=org.id,
            target_type="organization",
            target_id=org.id,
            after={"name": DEMO_ORG, "members": [p.email for p in members]},
        ),
        now,
    )
    await _add_history(session, org.id, [user_ids[p.email] for p in members], first_period, now)


async def _add_purchases(session: AsyncSession, org_id: int, start: date, now: datetime) -> None:
    session.add(
        Purchase(
            org_id=org_id,
            kind=PurchaseKind.SUBSCRIPTION.value,
            term=Term.YEARLY.value,
            inference_tokens=16_000_000,
            training_tokens=4_000_000,
            starts_on=start,
            ends_on=start.replace(year=start.year + 1),
            price=Decimal("7920.00"),
            reference="demo-subscription",
            created_at=datetime.combine(start, datetime.min.time(), tzinfo=now.tzinfo),
        )
    )
    this_month = period_start(period_of(now)).date()
    session.add(
        Purchase(
            org_id=org_id,
            kind=PurchaseKind.TOPUP.value,
            inference_tokens=2_000_000,
            training_tokens=0,
            starts_on=this_month,
            ends_on=period_start(shift_period(period_of(now), 1)).date(),
            price=Decimal("90.00"),
            reference="demo-topup",
            created_at=now,
        )
    )


async def _add_history(
    session: AsyncSession, org_id: int, user_ids: list[int], first_period: str, now: datetime
) -> None:
    models = {m.kind: m for m in await session.scalars(select(ModelCatalogEntry))}
    chat, embedder = models[ModelKind.CHAT.value], models[ModelKind.EMBEDDING.value]
    rng = random.Random(2026)  # noqa: S311 - demo data, not security
    for offset in range(HISTORY_MONTHS + 1):
        period = shift_period(first_period, offset)
        begin = period_start(period)
        span = (min(period_start(shift_period(period, 1)), now) - begin).total_seconds()
        for user_id in user_ids:
            for _ in range(rng.randint(15, 40)):
                at = begin + timedelta(seconds=rng.uniform(0, span))
                prompt, completion = rng.randint(80, 3000), rng.randint(30, 900)
                charge = inference_charge(prompt, completion, chat.input_rate, chat.output_rate)
                usage = ledger.Usage(
                    str(uuid.uuid4()),
                    user_id,
                    org_id,
                    chat.id,
                    period,
                    TokenKind.INFERENCE,
                    prompt,
                    completion,
                    charge,
                    chat.input_rate,
                    chat.output_rate,
                )
                await ledger.book(session, usage, at)
            for _ in range(rng.randint(0, 3)):
                ingested = rng.randint(2_000, 40_000)
                charge = training_charge(ingested, embedder.training_rate)
                usage = ledger.Usage(
                    str(uuid.uuid4()),
                    user_id,
                    org_id,
                    embedder.id,
                    period,
                    TokenKind.TRAINING,
                    ingested,
                    0,
                    charge,
                    embedder.training_rate,
                    Decimal(0),
                )
                await ledger.book(session, usage, begin + timedelta(seconds=rng.uniform(0, span)))
