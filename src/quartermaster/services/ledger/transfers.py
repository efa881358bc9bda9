"""The token ledger: reserve the worst case, settle the actual charge, release the rest (expiry is
the sweeper's: sweeper.py).

Every step is one transaction. `reserve` is a single conditional UPDATE on the member's counter
(`used + reserved + amount <= cap`), so the cap holds across any number of processes on
PostgreSQL (row lock, predicate re-checked) and on SQLite (writers queue on BEGIN IMMEDIATE).
Settling books the event, the counter and the roll-up together, so Σ events = counters.used =
Σ roll-ups holds (`qm ledger check`). Lock order is always hold row, then counter row.

Errors (domain/errors.py; codes in parentheses):
NotAuthenticated   a remembered API key revoked or expired since (invalid_api_key, expired_api_key)
NotFound           unknown or disabled model (model_not_found), unknown request (hold_not_found)
PermissionDenied   member_banned, member_unpaid, no_token_pool (services/ledger/spending.py)
QuotaExceeded      the worst case does not fit (insufficient_quota; details say what is left)
Conflict           request id reused (duplicate_request_id), settle replayed with other numbers
                   (settled_with_different_usage), second resolution (hold_already_<state>)
InvalidInput       negative counts, usage details that are not parts of their totals,
                   max_tokens above the model's limit
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain import holds
from quartermaster.domain.errors import Conflict, NotFound
from quartermaster.domain.periods import period_of
from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.domain.types import HoldState, ModelKind, TokenKind
from quartermaster.services import catalog
from quartermaster.services.context import Context
from quartermaster.services.identity import known_keys
from quartermaster.services.ledger import (
    fast_reserve,
    fast_settle,
    model_rules,
    rate_window,
    rows,
    spending,
)
from quartermaster.services.ledger.counters import charge, take, unreserve
from quartermaster.services.ledger.rows import Usage, charged, event_row, rollup_row
from quartermaster.store.models import (
    Hold,
    UsageCounter,
    UsageEvent,
    UsageMonthly,
)
from quartermaster.store.models.base import table_of
from quartermaster.store.upsert import add_to


@dataclass(frozen=True)
class HoldReceipt:
    """What `reserve` took; settle or release it by `request_id` before `expires_at`. Its
    settlement books by the same `route`."""

    request_id: str
    user_id: int
    org_id: int | None
    model: str
    kind: TokenKind
    period: str
    tokens_held: int
    expires_at: datetime
    rates: holds.Rates
    """The rates the hold was quoted at, so the caller knows the charge before it is booked."""
    model_id: int
    route: Route

    @classmethod
    def of(
        cls,
        request_id: str,
        model: str,
        owner: rows.Owner,
        rates: holds.Rates,
        amount: int,
        expires_at: datetime,
    ) -> HoldReceipt:
        return cls(
            request_id,
            owner.user_id,
            owner.org_id,
            model,
            rates.kind,
            owner.period,
            amount,
            expires_at,
            rates,
            owner.model_id,
            Route(owner.route),
        )

    def charge(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What `settle` will book for this usage (it charges the hold's rates, exactly these)."""
        return holds.charge(self.rates, prompt_tokens, completion_tokens)


class _Booked(Protocol):
    @property
    def request_id(self) -> str: ...
    @property
    def period(self) -> str: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def input_rate(self) -> Decimal: ...
    @property
    def output_rate(self) -> Decimal: ...
    @property
    def status(self) -> str: ...


@dataclass(frozen=True)
class Settlement:
    """The result of `settle`; a replay of the same request returns an equal one."""

    request_id: str
    period: str
    kind: TokenKind
    prompt_tokens: int
    completion_tokens: int
    tokens_charged: int
    tokens_held: int
    overrun: int
    input_rate: Decimal
    output_rate: Decimal
    late: bool
    """Settled after its hold had expired: charged in full, because the tokens were produced."""

    @classmethod
    def of(cls, booked: _Booked, kind: str, held: int) -> Settlement:
        return cls(
            request_id=booked.request_id,
            period=booked.period,
            kind=TokenKind(kind),
            prompt_tokens=booked.prompt_tokens,
            completion_tokens=booked.completion_tokens,
            tokens_charged=booked.tokens,
            tokens_held=held,
            overrun=holds.overrun(booked.tokens, held),
            input_rate=booked.input_rate,
            output_rate=booked.output_rate,
            late=booked.status == "late",
        )


async def book(session: AsyncSession, usage: Usage, now: datetime, released: int = 0) -> None:
    """Record `usage`: event, counter and roll-up move together or not at all.

    `released` is the part of a hold freed by this booking: the counter then moves `reserved`
    down and `used` up in one statement. Usage booked without a hold (demo history) upserts."""
    assert usage.tokens >= 0, "a charge is never negative"
    await session.execute(insert(UsageEvent).values(**event_row(usage, now)))
    key = {"user_id": usage.user_id, "period": usage.period, "kind": usage.kind.value}
    if usage.held is None:
        await add_to(session, table_of(UsageCounter), key, {"used": usage.tokens}, {"reserved": 0})
    else:
        await charge(session, (usage.user_id, usage.period, usage.kind), usage.tokens, released)
    keys, increments, extra = rollup_row(usage)
    await add_to(session, table_of(UsageMonthly), keys, increments, extra)


Caller = int | Principal | known_keys.Remembered
"""Whose cap a hold draws on: a user the caller's service already authorized, an authenticated
principal, or an API key this process remembers (checked by the hold's own statement)."""


async def reserve(
    ctx: Context,
    caller: Caller,
    model: str,
    prompt_tokens: int,
    max_output_tokens: int,
    request_id: str,
    *,
    hold_ttl_s: int | None = None,
    choices: int = 1,
    route: Route = Route.CHAT,
) -> HoldReceipt:
    """Hold the worst case of a call before it is sent upstream, or refuse it with nothing written.

    The one way a hold is taken: one statement when the process's guesses still hold
    (fast_reserve.py), every rule in one transaction when they do not or the call is refused
    (`reserve_fully`, whose refusals name the rule). A remembered API key is checked by that
    statement; when it takes nothing, the key is authenticated in full (401 if revoked) before
    the full path. For an embedding (training) model `prompt_tokens` is the counted tokens of
    the upload and `max_output_tokens` must be 0; a chat asking for `choices` answers (`n`) holds
    `max_output_tokens` for each. The hold counts in the month of the org's time
    zone at `now`, until `hold_ttl_s` (the context's by default) has passed. `route` is where
    the call came in; its settlement books by it.
    """
    user_id = caller if isinstance(caller, int) else caller.uid
    key_hash = caller.key_hash if isinstance(caller, known_keys.Remembered) else None
    ttl = ctx.hold_ttl_s if hold_ttl_s is None else hold_ttl_s
    now = ctx.clock.now()
    call = fast_reserve.Call(
        user_id,
        model,
        prompt_tokens,
        max_output_tokens,
        request_id,
        now,
        ttl,
        key_hash,
        choices,
        route,
    )
    receipt = await reserve_quickly(ctx, call)
    if receipt is not None:
        return receipt
    if isinstance(caller, known_keys.Remembered):
        principal = await known_keys.confirm(ctx, caller)
        call = replace(call, user_id=principal.uid, key_hash=None)
    return await reserve_fully(ctx, call)


async def reserve_quickly(ctx: Context, call: fast_reserve.Call) -> HoldReceipt | None:
    """The hold in one statement (services/ledger/fast_reserve.py), or None: `reserve_fully`
    decides."""
    quick = await fast_reserve.reserve(ctx, call)
    if quick is None:
        return None
    return HoldReceipt.of(
        call.request_id, call.model, quick.owner, quick.rates, quick.amount, quick.expires_at
    )


async def reserve_fully(ctx: Context, call: fast_reserve.Call) -> HoldReceipt:
    """Every rule in one transaction, each refusal with its own message (`call.key_hash` must
    be None: the caller was authenticated)."""
    assert call.key_hash is None, "authenticate the key before the full path"
    user_id, now = call.user_id, call.now
    async with ctx.uow.begin() as tx:
        session = tx.session
        entry = await catalog.enabled_model(session, call.model)
        rates = holds.rates_for(
            ModelKind(entry.kind), entry.input_rate, entry.output_rate, entry.training_rate
        )
        standing = await spending.standing_of(session, user_id)
        period = period_of(now, standing.timezone)
        spending.require_in_good_standing(standing)
        await model_rules.require_allowed(session, standing, entry.name)
        cap = await spending.cap_of(session, standing, rates.kind, period)
        if cap is None:
            raise spending.no_pool(rates.kind, period)
        amount = holds.worst_case(
            rates,
            call.prompt_tokens,
            call.max_output_tokens,
            entry.max_output_tokens,
            call.choices,
        )
        await rate_window.take(session, user_id, standing.limits, amount, now)
        await take(session, (user_id, period, rates.kind), amount, cap)
        expires_at = now + timedelta(seconds=call.hold_ttl_s)
        planned = rows.Planned(user_id, standing.org_id, entry.id, period, call.route)
        hold = rows.hold_row(call.request_id, planned, rates, amount, now, expires_at)
        await _insert_new_hold(session, hold)
        await tx.commit()
    return HoldReceipt.of(call.request_id, call.model, planned, rates, amount, expires_at)


async def settle(
    ctx: Context,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Settlement:
    """Charge what the call actually used, at the hold's rates, into the hold's month, by the
    hold's route; `cached_tokens` and `reasoning_tokens` are parts of the prompt and completion
    tokens, recorded beside them without changing the charge.

    Idempotent by request id: a replay with the same numbers returns the first result, with
    other numbers it is a Conflict. Usage above the hold is charged and recorded as overrun;
    a hold the sweeper already expired is still charged (marked late): the tokens were spent.
    """
    reported = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cached_tokens": cached_tokens,
        "reasoning_tokens": reasoning_tokens,
    }
    now = ctx.clock.now()
    async with ctx.uow.begin() as tx:
        session = tx.session
        claimed = await _claim(session, request_id, HoldState.SETTLED, now)
        late = claimed is None
        hold: rows.HeldRow
        if claimed is None:  # not pending: a replay, a hold the sweeper expired, or a mistake
            found = await _locked_hold(session, request_id)
            first = await session.scalar(
                select(UsageEvent).where(UsageEvent.request_id == request_id)
            )
            if first is not None:
                return _replay(first, found.amount, reported)
            if found.state != HoldState.EXPIRED.value:
                holds.resolve(HoldState(found.state), HoldState.SETTLED)
            hold = found
        else:
            hold = claimed
        rates = holds.Rates(TokenKind(hold.kind), hold.input_rate, hold.output_rate)
        status = "late" if late else "ok"
        usage = charged(
            request_id,
            hold,
            rates,
            hold.amount,
            prompt_tokens,
            completion_tokens,
            status,
            cached_tokens=cached_tokens,
            reasoning_tokens=reasoning_tokens,
        )
        await book(session, usage, now, released=0 if late else hold.amount)
        await tx.commit()
    return Settlement.of(usage, usage.kind.value, hold.amount)


async def settle_hold(
    ctx: Context,
    receipt: HoldReceipt,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Settlement:
    """`settle` for a hold this process took: the receipt already says everything the booking
    needs, so on PostgreSQL it is one statement; anything but a pending hold (a replay, a hold
    the sweeper expired) goes through `settle`, which knows those cases."""
    usage = charged(
        receipt.request_id,
        receipt,
        receipt.rates,
        receipt.tokens_held,
        prompt_tokens,
        completion_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
    )
    if await fast_settle.settle(ctx, usage, ctx.clock.now()):
        return Settlement.of(usage, usage.kind.value, receipt.tokens_held)
    return await settle(
        ctx,
        receipt.request_id,
        prompt_tokens,
        completion_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
    )


async def release(ctx: Context, request_id: str) -> None:
    """Give a hold back untouched (the call failed before any token was produced)."""
    async with ctx.uow.begin() as tx:
        hold = await _claim(tx.session, request_id, HoldState.RELEASED, ctx.clock.now())
        if hold is None:
            found = await _locked_hold(tx.session, request_id)
            holds.resolve(HoldState(found.state), HoldState.RELEASED)
        else:
            await unreserve(
                tx.session, (hold.user_id, hold.period, TokenKind(hold.kind)), hold.amount
            )
        await tx.commit()


async def _claim(
    session: AsyncSession, request_id: str, target: HoldState, now: datetime
) -> rows.HeldRow | None:
    """Resolve the hold if it is still pending, in one statement; None when it is not (so a
    hold resolves exactly once, whoever races for it)."""
    holds.resolve(HoldState.PENDING, target)
    result = await session.execute(
        update(Hold)
        .where(Hold.request_id == request_id, Hold.state == HoldState.PENDING.value)
        .values(state=target.value, resolved_at=now)
        .returning(
            Hold.user_id,
            Hold.org_id,
            Hold.model_id,
            Hold.period,
            Hold.kind,
            Hold.route,
            Hold.amount,
            Hold.input_rate,
            Hold.output_rate,
        )
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none()


async def _locked_hold(session: AsyncSession, request_id: str) -> Hold:
    """The hold for `request_id`, locked until commit so its resolutions run one at a time."""
    hold = await session.scalar(select(Hold).where(Hold.request_id == request_id).with_for_update())
    if hold is None:
        raise NotFound(
            f"no hold for request {request_id!r}; reserve before settling",
            param="request_id",
            code="hold_not_found",
        )
    return hold


async def _insert_new_hold(session: AsyncSession, values: dict[str, Any]) -> None:
    try:
        await session.execute(insert(Hold).values(**values))
    except IntegrityError:
        raise rows.duplicate(values["request_id"]) from None


def _replay(first: UsageEvent, held: int, reported: dict[str, int]) -> Settlement:
    """The first settlement again, or a Conflict when the replay reports other numbers (token
    counts or their details)."""
    booked = {name: getattr(first, name) for name in reported}
    if reported != booked:
        raise Conflict(
            f"request {first.request_id!r} was settled with {first.prompt_tokens} prompt and "
            f"{first.completion_tokens} completion tokens ({first.cached_tokens} cached, "
            f"{first.reasoning_tokens} reasoning); a replay must report the same",
            param="request_id",
            code="settled_with_different_usage",
            details=booked,
        )
    return Settlement.of(first, first.kind, held)
