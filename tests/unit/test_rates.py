from decimal import Decimal

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.rates import inference_charge, parse_rate, training_charge


def test_inference_charge_rounds_up_to_whole_tokens() -> None:
    assert inference_charge(1000, 200, Decimal("1"), Decimal("1")) == 1200
    assert inference_charge(3, 0, Decimal("0.1"), Decimal("2")) == 1
    assert inference_charge(10, 10, Decimal("0.15"), Decimal("0.6")) == 8


def test_decimal_rates_are_exact_where_floats_would_drift() -> None:
    # 0.1 + 0.2 style drift would give 30000000000000004 × … as a float; Decimal stays exact.
    assert inference_charge(10**12, 0, Decimal("0.3"), Decimal(0)) == 300_000_000_000
    assert training_charge(7, Decimal("0.000001")) == 1
    assert training_charge(0, Decimal("0.5")) == 0


@pytest.mark.parametrize("bad", ["-1", "abc", "NaN", "Infinity"])
def test_bad_rates_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rate(bad, "input_rate")
    assert caught.value.param == "input_rate"


def test_rates_parse_exactly() -> None:
    assert parse_rate("0.000001", "r") == Decimal("0.000001")
