"""The activity log as one timeline merged from three append-only sources: audit events (every
change, hash-chained), sign-in attempts and metered calls (usage events, metadata only).

Entries are ordered newest first by (time, source, id); a page ends with a cursor naming the last
entry, and the next page starts strictly after it, so pages never repeat or skip an entry even
while new ones arrive. docs/activity-log.md explains why metered calls are merged in at read time
rather than copied into the hash chain.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from typing import Any

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.periods import zone

MAX_PAGE = 1000
SIGNIN = "signin"
USAGE = "usage"


class Source(IntEnum):
    """Where an entry comes from; the number breaks ties between entries of the same instant."""

    AUDIT = 1
    SIGNIN = 2
    USAGE = 3


def sources_for(action: str | None) -> set[Source]:
    """Which sources can hold entries matching the action filter (`signin`, `usage`,
    `usage.inference`, `usage.training`; anything else names audit actions)."""
    if action is None:
        return set(Source)
    if action == SIGNIN:
        return {Source.SIGNIN}
    if action == USAGE or action.startswith(f"{USAGE}."):
        return {Source.USAGE}
    return {Source.AUDIT}


@dataclass(frozen=True, order=True)
class Key:
    at: datetime
    source: Source
    id: int


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: Source
    id: int
    action: str
    user_id: int | None
    email: str | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return Key(self.at, self.source, self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "source": self.source.name.lower(),
            "id": self.id,
            "action": self.action,
            "user_id": self.user_id,
            "email": self.email,
            "details": self.details,
        }


def encode_cursor(key: Key) -> str:
    raw = f"{key.at.isoformat()}|{key.source.value}|{key.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    """The key a cursor names, or a 400 telling the caller to start again."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, source, ident = raw.split("|")
        key = Key(datetime.fromisoformat(at), Source(int(source)), int(ident))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not one this server gave out; start again without it", param="cursor"
        ) from None
    if key.at.tzinfo is None:
        raise InvalidInput("cursor has no time zone; start again without it", param="cursor")
    return key


@dataclass(frozen=True)
class ActivityQuery:
    user_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Entries at or after `since` and strictly before `until`."""
    limit: int = 50
    cursor: Key | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", param="limit")
        if self.action is not None and not 1 <= len(self.action) <= 64:
            raise InvalidInput("action is 1 to 64 characters, e.g. usage.inference", "action")
        if self.since and self.until and self.since >= self.until:
            raise InvalidInput("'from' must be before 'to'", param="from")


def newest(streams: Iterable[list[Entry]], limit: int) -> tuple[list[Entry], bool]:
    """The `limit` newest entries of streams each sorted newest first, and whether any is left."""
    merged = list(heapq.merge(*streams, key=lambda entry: entry.key, reverse=True))
    return merged[:limit], len(merged) > limit


def parse_moment(text: str | None, tz: str, *, end: bool, param: str) -> datetime | None:
    """A `from`/`to` bound: an ISO date (a whole day in the org's time zone; `to` includes it)
    or an ISO datetime with an offset. Returned as aware UTC."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), zone(tz)).astimezone(UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{param} {text!r} is not a date (2026-11-01) or a datetime with an offset", param
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{param} {text!r} needs an offset, e.g. 2026-11-01T00:00:00Z", param)
    return moment.astimezone(UTC)
