from datetime import UTC, datetime

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.rate_limits import (
    Limits,
    check,
    minute_of,
    refusal,
    seconds_to_next_window,
)

AT = datetime(2026, 11, 15, 12, 0, 45, tzinfo=UTC)


def test_a_window_is_a_clock_minute_shared_by_every_process() -> None:
    assert minute_of(AT) == minute_of(datetime(2026, 11, 15, 12, 0, 0, tzinfo=UTC))
    assert minute_of(datetime(2026, 11, 15, 12, 1, tzinfo=UTC)) == minute_of(AT) + 1
    assert seconds_to_next_window(AT) == 15


def test_the_refusal_says_when_to_retry_and_which_limit() -> None:
    error = refusal(Limits(60, None), 100, AT)
    assert error.details["retry_after_s"] == 15
    assert "60 calls" in error.message
    too_big = refusal(Limits(None, 1_000), 5_000, AT)
    assert "lower max_tokens" in too_big.message


@pytest.mark.parametrize("bad", [Limits(0, None), Limits(None, -5)])
def test_limits_below_one_are_refused(bad: Limits) -> None:
    with pytest.raises(InvalidInput):
        check(bad)


def test_no_limits_means_nothing_to_check() -> None:
    assert not Limits().active
    assert Limits(10).active
