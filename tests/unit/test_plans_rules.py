from decimal import Decimal

import pytest

from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.plans import PlanTerms, cap, check_terms, covered_periods, is_covered
from quartermaster.domain.types import Term, TokenKind

PLUS = PlanTerms("plus", 2_000_000, 500_000, Decimal("20"), Decimal("200"))


def test_a_yearly_payment_covers_twelve_months_across_the_new_year() -> None:
    assert covered_periods(Term.YEARLY, "2026-11") == ("2026-11", "2027-10")
    assert covered_periods(Term.MONTHLY, "2026-11") == ("2026-11", "2026-11")
    spans = [covered_periods(Term.YEARLY, "2026-11")]
    assert is_covered("2027-01", spans)
    assert not is_covered("2027-11", spans)
    assert not is_covered("2026-10", spans)


def test_refills_add_to_the_plans_monthly_cap_of_their_kind() -> None:
    assert cap(PLUS, TokenKind.INFERENCE, [2_000_000]) == 4_000_000
    assert cap(PLUS, TokenKind.TRAINING, []) == 500_000


def test_a_plan_that_cannot_work_is_refused_with_every_problem() -> None:
    bad = PlanTerms("", -1, 0, Decimal("-5"), Decimal(0), is_default=True)
    with pytest.raises(InvalidInput) as caught:
        check_terms(bad)
    message = str(caught.value)
    for problem in ("name", "negative", "prices", "default plan must be free"):
        assert problem in message


def test_the_price_follows_the_term() -> None:
    assert PLUS.price(Term.YEARLY) == Decimal("200")
    assert not PLUS.free
