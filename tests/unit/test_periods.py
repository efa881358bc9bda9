from datetime import UTC, datetime

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.periods import (
    parse_period,
    period_end,
    period_of,
    period_start,
    previous_period,
    shift_period,
)


def test_a_moment_belongs_to_the_month_of_the_org_time_zone() -> None:
    moment = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert period_of(moment) == "2026-12"
    assert period_of(moment, "America/New_York") == "2026-11"
    assert period_of(datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "Asia/Tokyo") == "2026-12"


def test_periods_shift_across_year_boundaries() -> None:
    assert previous_period("2026-01") == "2025-12"
    assert shift_period("2025-11", 3) == "2026-02"
    assert shift_period("2026-03", -15) == "2024-12"


def test_reset_moment_is_the_first_of_the_next_month_in_the_org_zone() -> None:
    assert period_start("2026-02") == datetime(2026, 2, 1, tzinfo=UTC)
    assert period_end("2026-12") == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end("2026-11", "America/New_York") == datetime(2026, 12, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-13", "2026-0", "26-01", "2026/01", "", "abcd-ef"])
def test_malformed_periods_are_refused_with_the_field_named(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_period(text)
    assert caught.value.param == "period"


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown time zone"):
        period_of(datetime(2026, 1, 1, tzinfo=UTC), "Mars/Olympus")
