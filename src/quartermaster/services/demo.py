"""Demo data for `make run` and `qm demo`: one enterprise, its people, purchases, caps and a few
months of usage. The enterprise is provisioned, bought for and allocated through the services an
operator and admins use; its usage goes through the booking path of real calls. Loading is
idempotent; each run issues a fresh API key per demo user (revoking the previous demo keys)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.enterprise import Provisioning
from quartermaster.domain.periods import period_of, period_start, shift_period
from quartermaster.domain.principal import Principal
from quartermaster.domain.rates import inference_charge, training_charge
from quartermaster.domain.routes import Route
from quartermaster.domain.types import ModelKind, PurchaseKind, Role, Term, TokenKind
from quartermaster.services import audit, ledger
from quartermaster.services.catalog import defaults
from quartermaster.services.context import Context
from quartermaster.services.enterprise import allocations, provisioning, purchases
from quartermaster.services.identity import api_keys
from quartermaster.services.identity.accounts import Registration, find_user_by_email, register
from quartermaster.services.ledger import fold
from quartermaster.store.models import ApiKey, ModelCatalogEntry, Organization

DEMO_ORG = "Acme Research"
DEMO_PASSWORD = "harbor-lantern-42"  # noqa: S105 - printed for the demo on purpose
DEMO_KEY_NAME = "demo"
HISTORY_MONTHS = 4
CHAT_ROUTES = (Route.CHAT, Route.RESPONSES, Route.MESSAGES, Route.COMPLETIONS)
"""The routes the demo's chat history came by, so the statistics by route have something."""
OPERATOR = Principal.command_line()


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
    await defaults.seed(ctx)
    user_ids = {}
    for person in PEOPLE:
        user_ids[person.email] = await _ensure_user(ctx, person)
    async with ctx.uow.begin(write=False) as tx:
        exists = await tx.session.scalar(
            select(Organization.id).where(Organization.name == DEMO_ORG)
        )
    if exists is None:
        await _load_enterprise(ctx, user_ids)
    async with ctx.uow.begin() as tx:
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


@dataclass(frozen=True)
class _At:
    """A clock stopped at one instant: the demo enterprise is provisioned months ago."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment


async def _load_enterprise(ctx: Context, user_ids: dict[str, int]) -> None:
    """Provision the demo enterprise as an operator would, at the start of its history, then
    top it up, allocate, and book its usage."""
    now = ctx.clock.now()
    first_period = shift_period(period_of(now), -HISTORY_MONTHS)
    members = [p for p in PEOPLE if p.role != "operator"]
    request = Provisioning(
        name=DEMO_ORG,
        member_emails=[p.email for p in members],
        admin_emails=[p.email for p in members if p.role == Role.ADMIN],
        inference_tokens=16_000_000,
        training_tokens=4_000_000,
        term=Term.YEARLY,
        billing_address="1 Research Way, Springfield",
        additional_information="Demo data: the usage history is generated.",
    )
    then = replace(ctx, clock=_At(period_start(first_period)))
    org_id = (await provisioning.provision(then, OPERATOR, request))["org_id"]
    topup = purchases.Order(2_000_000, reference="demo-topup")
    await purchases.buy(ctx, OPERATOR, org_id, PurchaseKind.TOPUP, topup)
    for p in members:
        caps = allocations.CapsEdit(p.max_inference_tokens, p.max_training_tokens, version=1)
        await allocations.set_allocation(ctx, OPERATOR, org_id, user_ids[p.email], caps)
    async with ctx.uow.begin() as tx:
        entry = audit.AuditEntry(
            action="demo.load",
            org_id=org_id,
            target_type="organization",
            target_id=org_id,
            after={"name": DEMO_ORG, "members": [p.email for p in members]},
        )
        await audit.record(tx.session, entry, now)
        ids = [user_ids[p.email] for p in members]
        await fold.forget(tx.session)  # the history books into months it may have folded
        await _add_history(tx.session, org_id, ids, first_period, now)
        await tx.commit()


async def _add_history(
    session: AsyncSession, org_id: int, user_ids: list[int], first_period: str, now: datetime
) -> None:
    models = {m.kind: m for m in await session.scalars(select(ModelCatalogEntry))}
    chat, embedder = models[ModelKind.CHAT.value], models[ModelKind.EMBEDDING.value]
    rng = random.Random(2026)  # noqa: S311 - demo data, not security
    routes = random.Random(7)  # noqa: S311 - its own draws, so the amounts stay as they were
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
                    routes.choices(CHAT_ROUTES, weights=(6, 2, 2, 1))[0],
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
                    Route.DATASETS,
                )
                await ledger.book(session, usage, begin + timedelta(seconds=rng.uniform(0, span)))
