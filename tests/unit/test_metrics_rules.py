from datetime import UTC, datetime, timedelta

import pytest

from quartermaster.domain.activity import (
    ActivityQuery,
    Entry,
    Key,
    Source,
    decode_cursor,
    encode_cursor,
    newest,
    parse_moment,
    sources_for,
)
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.member_table import MemberQuery, MemberStatus, status_of
from quartermaster.domain.projection import project_month_end
from quartermaster.domain.types import TokenKind
from quartermaster.domain.usage_table import monthly_table, yearly_table

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def test_projection_extends_the_burn_rate_to_the_month_end() -> None:
    p = project_month_end(1_000, NOV, DEC, NOV + timedelta(days=10), pool_tokens=2_000)
    assert p.projected_tokens == 3_000
    assert p.tokens_per_day == 100
    assert p.confident
    assert p.exhausted_at == NOV + timedelta(days=20)


def test_projection_in_the_first_hour_is_the_usage_so_far() -> None:
    p = project_month_end(500, NOV, DEC, NOV + timedelta(minutes=5))
    assert p.projected_tokens == 500
    assert not p.confident


def test_monthly_table_fills_gaps_and_years_add_up() -> None:
    sums = [
        ("2025-12", TokenKind.INFERENCE, 10, 1),
        ("2026-02", TokenKind.TRAINING, 5, 2),
        ("2026-02", TokenKind.INFERENCE, 7, 3),
    ]
    months = monthly_table(sums, last="2026-03")
    assert [m.period for m in months] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    assert months[2].total_tokens == 12
    years = {y.period: y.as_dict() for y in yearly_table(months)}
    assert years["2026"]["inference_tokens"] == 7
    assert years["2026"]["training_requests"] == 2


def test_status_is_one_of_three_with_banned_first() -> None:
    assert status_of(paid=False, banned=True) is MemberStatus.BANNED
    assert status_of(paid=False, banned=False) is MemberStatus.UNPAID


def test_a_page_too_big_is_refused_with_the_bound() -> None:
    with pytest.raises(InvalidInput, match="between 1 and 500"):
        MemberQuery(limit=10_000)


def test_cursors_round_trip_and_junk_is_refused() -> None:
    key = Key(NOV, Source.USAGE, 42)
    assert decode_cursor(encode_cursor(key)) == key
    with pytest.raises(InvalidInput, match="start again"):
        decode_cursor("not-a-cursor")


def test_merge_takes_the_newest_across_sources() -> None:
    def entry(minute: int, source: Source) -> Entry:
        return Entry(NOV + timedelta(minutes=minute), source, minute, "x", None, None)

    audit = [entry(5, Source.AUDIT), entry(1, Source.AUDIT)]
    usage = [entry(4, Source.USAGE), entry(3, Source.USAGE)]
    page, more = newest([audit, usage], 3)
    assert [e.id for e in page] == [5, 4, 3]
    assert more


def test_action_filters_pick_their_source() -> None:
    assert sources_for("usage.inference") == {Source.USAGE}
    assert sources_for("signin") == {Source.SIGNIN}
    assert sources_for("member") == {Source.AUDIT}


def test_dates_are_whole_days_in_the_org_zone() -> None:
    start = parse_moment("2026-11-01", "America/New_York", end=False, param="from")
    end = parse_moment("2026-11-01", "UTC", end=True, param="to")
    assert start == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert end == datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="needs an offset"):
        parse_moment("2026-11-01T10:00", "UTC", end=True, param="to")
    with pytest.raises(InvalidInput, match="before"):
        ActivityQuery(since=DEC, until=NOV)
