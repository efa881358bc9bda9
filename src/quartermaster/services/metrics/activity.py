"""The org's activity log: audit events, sign-ins and metered calls merged newest first, with
filters by member, action and time, paged by cursor (docs/activity-log.md).

Each source is read with its own indexed query bounded by the page size, then merged in memory,
so a page costs three short index scans whatever the size of the log. Metered calls show
metadata only (model, tokens, status, time): no prompt text is stored anywhere.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from quartermaster.domain.activity import (
    USAGE,
    ActivityQuery,
    Entry,
    Key,
    Source,
    encode_cursor,
    newest,
    sources_for,
)
from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.metrics import report_reads
from quartermaster.store.models import (
    AuditEvent,
    LoginAttempt,
    Membership,
    ModelCatalogEntry,
    UsageEvent,
    User,
)


def _window(at: Any, ident: Any, source: Source, q: ActivityQuery) -> list[ColumnElement[bool]]:
    """Time bounds, and the keyset bound: strictly after the cursor in (time, source, id)."""
    where = []
    if q.since is not None:
        where.append(at >= q.since)
    if q.until is not None:
        where.append(at < q.until)
    if (c := q.cursor) is not None:
        if source < c.source:
            where.append(at <= c.at)
        elif source > c.source:
            where.append(at < c.at)
        else:
            where.append(or_(at < c.at, and_(at == c.at, ident < c.id)))
    return where


async def _audit(session: AsyncSession, org_id: int, q: ActivityQuery) -> list[Entry]:
    query = (
        select(AuditEvent, User.email)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .where(
            AuditEvent.org_id == org_id,
            *_window(AuditEvent.created_at, AuditEvent.id, Source.AUDIT, q),
        )
    )
    if q.action is not None:
        query = query.where(
            or_(
                AuditEvent.action == q.action,
                AuditEvent.action.startswith(f"{q.action}.", autoescape=True),
            )
        )
    if q.user_id is not None:
        target = and_(AuditEvent.target_type == "user", AuditEvent.target_id == str(q.user_id))
        query = query.where(or_(AuditEvent.actor_user_id == q.user_id, target))
    rows = await session.execute(
        query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(q.limit + 1)
    )
    return [
        Entry(
            e.created_at, Source.AUDIT, e.id, e.action, e.actor_user_id, email,
            {"target_type": e.target_type, "target_id": e.target_id, "before": e.before,
             "after": e.after, "ip": e.ip},
        )
        for e, email in rows
    ]  # fmt: skip


async def _signins(session: AsyncSession, org_id: int, q: ActivityQuery) -> list[Entry]:
    """Attempts by the org's members while they were members (by user id: a failed attempt
    with an unknown email belongs to no org)."""
    at = LoginAttempt.created_at
    member = and_(
        Membership.user_id == LoginAttempt.user_id,
        Membership.org_id == org_id,
        at >= Membership.joined_at,
        or_(Membership.removed_at.is_(None), at < Membership.removed_at),
    )
    query = select(LoginAttempt).where(
        select(Membership.id).where(member).exists(),
        *_window(at, LoginAttempt.id, Source.SIGNIN, q),
    )
    if q.user_id is not None:
        query = query.where(LoginAttempt.user_id == q.user_id)
    rows = await session.scalars(
        query.order_by(at.desc(), LoginAttempt.id.desc()).limit(q.limit + 1)
    )
    return [
        Entry(
            a.created_at, Source.SIGNIN, a.id, "signin", a.user_id, a.email,
            {"method": a.method, "success": a.success, "reason": a.reason,
             "mfa_used": a.mfa_used, "ip": a.ip},
        )
        for a in rows
    ]  # fmt: skip


async def _usage(session: AsyncSession, org_id: int, q: ActivityQuery) -> list[Entry]:
    query = (
        select(UsageEvent, User.email, ModelCatalogEntry.name)
        .join(User, User.id == UsageEvent.user_id)
        .join(ModelCatalogEntry, ModelCatalogEntry.id == UsageEvent.model_id)
        .where(
            UsageEvent.org_id == org_id,
            *_window(UsageEvent.created_at, UsageEvent.id, Source.USAGE, q),
        )
    )
    if q.action is not None and q.action != USAGE:
        query = query.where(UsageEvent.kind == q.action.removeprefix(f"{USAGE}."))
    if q.user_id is not None:
        query = query.where(UsageEvent.user_id == q.user_id)
    rows = await session.execute(
        query.order_by(UsageEvent.created_at.desc(), UsageEvent.id.desc()).limit(q.limit + 1)
    )
    return [
        Entry(
            e.created_at, Source.USAGE, e.id, f"{USAGE}.{e.kind}", e.user_id, email,
            {"model": model, "prompt_tokens": e.prompt_tokens,
             "completion_tokens": e.completion_tokens, "tokens": e.tokens, "status": e.status,
             "request_id": e.request_id},
        )
        for e, email, model in rows
    ]  # fmt: skip


READERS = {Source.AUDIT: _audit, Source.SIGNIN: _signins, Source.USAGE: _usage}


async def read_page(
    session: AsyncSession, org_id: int, q: ActivityQuery
) -> tuple[list[Entry], Key | None]:
    """One page newest first, and the key to continue after (None on the last page)."""
    streams = [
        await READERS[source](session, org_id, q) for source in sorted(sources_for(q.action))
    ]
    entries, more = newest(streams, q.limit)
    return entries, entries[-1].key if more and entries else None


def _mentioned(entry: Entry) -> set[int]:
    """The users an entry names: who acted, the member changed, the member who asked (a token
    request's `user_id`), and the members of a bulk change (its values are keyed by user id)."""
    found = {entry.user_id} if entry.user_id is not None else set()
    details = entry.details
    if details.get("target_type") == "user" and str(details.get("target_id")).isdigit():
        found.add(int(details["target_id"]))
    for side in (details.get("before"), details.get("after")):
        if not isinstance(side, dict):
            continue
        if isinstance(side.get("user_id"), int):
            found.add(side["user_id"])
        for value in side.values():
            if isinstance(value, dict):
                found |= {int(key) for key in value if str(key).isdigit()}
    return found


async def _people(session: AsyncSession, entries: list[Entry]) -> dict[str, dict[str, Any]]:
    """Email and name of everyone the page names, by user id: a log read by people shows who,
    not a number."""
    ids = set().union(*(_mentioned(entry) for entry in entries))
    rows = await session.execute(select(User.id, User.email, User.name).where(User.id.in_(ids)))
    return {str(uid): {"email": email, "name": name} for uid, email, name in rows}


async def page(ctx: Context, principal: Principal, org_id: int, q: ActivityQuery) -> dict[str, Any]:
    async with report_reads.admin_report(ctx, principal, org_id) as session:
        entries, last = await read_page(session, org_id, q)
        people = await _people(session, entries)
    return {
        "org_id": org_id,
        "entries": [entry.as_dict() for entry in entries],
        "people": people,
        "next_cursor": encode_cursor(last) if last else None,
    }
