"""Calendar-month periods: caps replenish on the 1st by construction, because usage is keyed by
month and a new month simply has no usage yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.types import PeriodKey


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or a clear error naming the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'America/New_York'",
            param="timezone",
        ) from exc


def period_of(moment: datetime, tz: str = "UTC") -> PeriodKey:
    """The month `moment` falls in, seen from time zone `tz`."""
    assert moment.tzinfo is not None, "periods are computed from aware datetimes only"
    local = moment.astimezone(zone(tz))
    return PeriodKey(f"{local.year:04d}-{local.month:02d}")


def parse_period(text: str) -> tuple[int, int]:
    """`YYYY-MM` as (year, month), refusing anything else with a message."""
    try:
        year_text, month_text = text.split("-")
        year, month = int(year_text), int(month_text)
    except ValueError:
        raise InvalidInput(f"period {text!r} is not in YYYY-MM form", param="period") from None
    if not (1 <= month <= 12 and 1970 <= year <= 9999 and len(year_text) == 4):
        raise InvalidInput(f"period {text!r} is not a valid month", param="period")
    return year, month


def shift_period(period: str, months: int) -> PeriodKey:
    """The period `months` later (negative: earlier)."""
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return PeriodKey(f"{index // 12:04d}-{index % 12 + 1:02d}")


def previous_period(period: str) -> PeriodKey:
    return shift_period(period, -1)


def period_start(period: str, tz: str = "UTC") -> datetime:
    """The first instant of `period` in `tz`, as an aware UTC datetime."""
    year, month = parse_period(period)
    return datetime(year, month, 1, tzinfo=zone(tz)).astimezone(UTC)


def period_end(period: str, tz: str = "UTC") -> datetime:
    """The first instant after `period` (the reset moment), as an aware UTC datetime."""
    return period_start(shift_period(period, 1), tz)


CLOSING_GRACE = timedelta(days=1)
"""How long after a month ends in UTC before no org's clock can still be in it: zones run up to
12 hours behind UTC, and the rest covers a reserve that read its clock just before midnight."""


def last_closed_period(now: datetime) -> PeriodKey:
    """The latest month that has ended in every time zone, with `CLOSING_GRACE` to spare: no new
    hold can be taken in it, whatever zone an org has or moves to."""
    return previous_period(period_of(now - CLOSING_GRACE))
