"""API keys this process authenticated a moment ago, so a metered call need not read its key.

Looking the key up was one of the two database round trips a call made before its answer. A
key authenticated less than `api_keys.LAST_USED_GRANULARITY` (a minute) ago is remembered as a
`Remembered` caller; its last-used time, refreshed at most once a minute before, may now lag by
up to two. Nothing is read for it: the statement that takes the call's hold checks the key
itself (not revoked, not expired, still its owner's: `ledger.fast_reserve`), so a revoked key is
refused on the very next call, as before. Whenever that statement does not take the hold,
`confirm` authenticates the key in full before anything else is done for it; the 401 for a
revoked or expired key comes from there, with its usual message. So does any refusal before
the hold (an unknown model, a bad limit: `confirmed_before_refusal`): a revoked key never
learns anything but its 401.

Only the metered routes (chat, embeddings) take a `Remembered` caller; every other route
authenticates in full.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from quartermaster.domain.errors import DomainError
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.identity import api_keys

MAX_KNOWN = 50_000
"""Per process; past it the memory starts over (each key costs one lookup to remember again)."""


@dataclass(frozen=True)
class Remembered:
    """A bearer key authenticated recently, not checked for this call: act on it only through a
    statement that checks `key_hash`, or after `confirm`."""

    principal: Principal
    key_hash: str
    secret: str

    @property
    def uid(self) -> int:
        return self.principal.uid


@dataclass(frozen=True)
class _Known:
    principal: Principal
    checked_at: datetime


class _KnownKeys(dict[str, _Known]):
    """The keys this process checked, by hash, kept on the Context's memory."""


def _memory(ctx: Context) -> _KnownKeys:
    return ctx.memory.part(_KnownKeys)


async def recall(ctx: Context, secret: str) -> Principal | Remembered:
    """The caller behind `secret`: remembered when this process checked it a moment ago,
    otherwise authenticated in full now (NotAuthenticated for a bad key) and remembered."""
    hashed, now = api_keys.key_hash(secret), ctx.clock.now()
    entry = _memory(ctx).get(hashed)
    if entry is not None and now - entry.checked_at < api_keys.LAST_USED_GRANULARITY:
        return Remembered(entry.principal, hashed, secret)
    return await _authenticate(ctx, secret, hashed, now)


async def confirm(ctx: Context, caller: Principal | Remembered) -> Principal:
    """The caller checked against the database now: a `Remembered` key is forgotten, then
    authenticated in full (NotAuthenticated when it was revoked or has expired since)."""
    if isinstance(caller, Principal):
        return caller
    _memory(ctx).pop(caller.key_hash, None)
    return await _authenticate(ctx, caller.secret, caller.key_hash, ctx.clock.now())


@asynccontextmanager
async def confirmed_before_refusal(
    ctx: Context, caller: Principal | Remembered
) -> AsyncIterator[None]:
    """Checks made before the hold (the model, the request's limits) may refuse a call; a
    remembered key is authenticated in full before such a refusal goes out, so a revoked key
    hears 401, never anything about the catalog or the request."""
    try:
        yield
    except DomainError:
        await confirm(ctx, caller)
        raise


async def _authenticate(ctx: Context, secret: str, hashed: str, now: datetime) -> Principal:
    principal = await api_keys.authenticate(ctx, secret)
    memory = _memory(ctx)
    if len(memory) >= MAX_KNOWN:
        memory.clear()
    memory[hashed] = _Known(principal, now)
    return principal
