"""Usage details are parts of their totals: the ledger refuses any other, and an upstream's are
bounded to their totals before they reach it."""

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.usage_details import bounded, require_parts


@pytest.mark.parametrize("parts", [(0, 0), (10, 5), (3, 0), (0, 5)])
def test_parts_up_to_their_totals_are_taken(parts: tuple[int, int]) -> None:
    require_parts(10, 5, *parts)


@pytest.mark.parametrize(
    ("parts", "named", "said"),
    [
        ((-1, 0), "cached_tokens", "negative"),
        ((0, -1), "reasoning_tokens", "negative"),
        ((11, 0), "cached_tokens", "more than the 10 prompt tokens"),
        ((0, 6), "reasoning_tokens", "more than the 5 completion tokens"),
    ],
)
def test_a_part_that_is_negative_or_above_its_total_is_refused(
    parts: tuple[int, int], named: str, said: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        require_parts(10, 5, *parts)
    assert refused.value.param == "usage"
    assert named in str(refused.value)
    assert said in str(refused.value)


def test_an_upstreams_detail_is_bounded_to_its_total() -> None:
    assert [bounded(part, 10) for part in (-3, 0, 7, 10, 11)] == [0, 0, 7, 10, 10]
