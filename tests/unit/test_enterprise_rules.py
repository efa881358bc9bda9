"""The enterprise rules on plain values: provisioning refusals, pool checks, bulk plans,
auto-approval and prices."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from quartermaster.domain.allocation import (
    Balance,
    BulkRule,
    Seat,
    Strategy,
    check_caps,
    check_fits,
    plan_bulk,
)
from quartermaster.domain.amounts import MAX_TOKEN_AMOUNT
from quartermaster.domain.enterprise import Person, Provisioning, check_provisioning, roster
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.pricing import PriceList, line_price, token_problems
from quartermaster.domain.requests import AutoApprovalRule, auto_approves, check_ask
from quartermaster.domain.types import Term, TokenKind

ANN, BOB = "ann@example.com", "bob@example.com"
PEOPLE = {ANN: Person(ANN, 1, True), BOB: Person(BOB, 2, True)}


def problems(request: Provisioning, people: dict[str, Person] = PEOPLE) -> list[str]:
    with pytest.raises(InvalidInput) as refused:
        check_provisioning(request, roster(request), people)
    found: list[str] = refused.value.details["problems"]
    assert all(problem in str(refused.value) for problem in found)
    return found


def good(**changes: object) -> Provisioning:
    fields: dict[str, object] = {
        "name": "ABC",
        "member_emails": [ANN, BOB],
        "admin_emails": [ANN],
        "inference_tokens": 2_000_000,
        "billing_address": "1 Main Street, Springfield",
    }
    return Provisioning(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_good_request_passes() -> None:
    check_provisioning(good(), roster(good()), PEOPLE)


@pytest.mark.parametrize(
    ("changes", "people", "expected"),
    [
        ({"member_emails": [ANN]}, PEOPLE, "at least 2 members (got 1)"),
        ({"member_emails": [ANN, "zed@example.com"]}, PEOPLE, "not registered"),
        ({}, {**PEOPLE, BOB: Person(BOB, 2, False)}, "not accepted the terms"),
        ({"admin_emails": []}, PEOPLE, "no admin"),
        ({"admin_emails": ["zed@example.com"]}, PEOPLE, "must also be listed as members"),
        ({}, {**PEOPLE, BOB: Person(BOB, 2, True, "Other Co")}, "bob@example.com (Other Co)"),
        ({"inference_tokens": 3_000_000}, PEOPLE, "multiple of 2,000,000"),
        ({"inference_tokens": 0}, PEOPLE, "positive multiple"),
        ({"min_inference_allocation": 1_500_000}, PEOPLE, "buy at least 3,000,000"),
        ({"billing_address": " \n"}, PEOPLE, "the billing address is required"),
        ({"billing_address": "x" * 2_001}, PEOPLE, "longer than 2,000 characters"),
        ({"additional_information": "x" * 4_001}, PEOPLE, "longer than 4,000 characters"),
    ],
)
def test_each_provisioning_refusal_is_named(
    changes: dict[str, object], people: dict[str, Person], expected: str
) -> None:
    found = problems(good(**changes), people)
    assert any(expected in problem for problem in found), found


def test_every_problem_is_named_at_once() -> None:
    request = good(member_emails=[BOB], admin_emails=["amy@example.com"], inference_tokens=1)
    found = problems(request, {BOB: Person(BOB, 2, False, "Other Co")})
    expected = [
        "at least 2 members",
        "not registered (they must register first): amy@example.com",
        "not accepted the terms of use: bob@example.com",
        "must also be listed as members: amy@example.com",
        "already in another enterprise: bob@example.com (Other Co)",
        "multiple of 2,000,000",
        "cannot give each of the 1 members the minimum of 200,000",
    ]
    assert len(found) == len(expected)
    assert all(any(e in problem for problem in found) for e in expected), found


def test_raising_past_the_pool_says_the_balance_left() -> None:
    balance = Balance(TokenKind.INFERENCE, 2_000_000, 1_800_000)
    check_fits(balance, 200_000, 400_000, "2026-11")
    with pytest.raises(InvalidInput, match="only 200,000 inference tokens are left") as refused:
        check_fits(balance, 200_000, 400_001, "2026-11")
    assert refused.value.details["balance_left"] == 200_000


def test_an_over_assigned_pool_allows_only_decreases() -> None:
    balance = Balance(TokenKind.TRAINING, 1_000_000, 1_500_000)
    check_fits(balance, 500_000, 100_000, "2026-12")
    with pytest.raises(InvalidInput) as refused:
        check_fits(balance, 500_000, 500_001, "2026-12")
    assert refused.value.code == "over_assigned"


def test_inference_caps_have_a_floor() -> None:
    with pytest.raises(InvalidInput, match="at least 200,000"):
        check_caps(199_999, 0, 200_000)


def seats(*caps: int) -> list[Seat]:
    return [Seat(i, 100 + i, f"u{i}@example.com", 1, cap) for i, cap in enumerate(caps)]


@pytest.mark.parametrize(
    ("rule", "after"),
    [
        (BulkRule(TokenKind.INFERENCE, Strategy.EVEN), 2_000_000),
        (BulkRule(TokenKind.INFERENCE, Strategy.PERCENTAGE, percent=Decimal("12.5")), 750_000),
        (BulkRule(TokenKind.INFERENCE, Strategy.FIXED, amount=100), 200_000),
        (BulkRule(TokenKind.INFERENCE, Strategy.EVEN, maximum=1_000_000), 1_000_000),
        (BulkRule(TokenKind.TRAINING, Strategy.FIXED, amount=0), 0),
    ],
)
def test_bulk_strategies_with_bounds(rule: BulkRule, after: int) -> None:
    plan = plan_bulk(rule, seats(200_000, 300_000, 500_000), 6_000_000, 200_000)
    assert [row.after for row in plan.rows] == [after] * 3
    assert plan.balance_after == 6_000_000 - 3 * after


def test_a_plan_hash_changes_with_any_cap_or_version() -> None:
    rule = BulkRule(TokenKind.INFERENCE, Strategy.EVEN)
    base = plan_bulk(rule, seats(200_000, 300_000), 2_000_000, 200_000)
    assert base.plan_hash == plan_bulk(rule, seats(200_000, 300_000), 2_000_000, 0).plan_hash
    assert base.plan_hash != plan_bulk(rule, seats(200_000, 300_001), 2_000_000, 0).plan_hash
    assert base.plan_hash != plan_bulk(rule, seats(200_000, 300_000), 4_000_000, 0).plan_hash


@pytest.mark.parametrize(
    ("amount", "approved"),
    [(100_000, True), (100_001, False), (50_000, True)],
)
def test_auto_approval_limits(amount: int, approved: bool) -> None:
    rule = AutoApprovalRule(True, max_tokens=100_000, max_pool_pct=Decimal(5))
    assert auto_approves(rule, amount, Balance(TokenKind.INFERENCE, 2_000_000, 0)) is approved


def test_auto_approval_needs_the_rule_on_a_share_of_the_pool_and_room_left() -> None:
    rule = AutoApprovalRule(True, max_tokens=1_000_000, max_pool_pct=Decimal(1))
    assert not auto_approves(rule, 30_000, Balance(TokenKind.INFERENCE, 2_000_000, 0))
    assert not auto_approves(rule, 20_000, Balance(TokenKind.INFERENCE, 2_000_000, 1_990_000))
    off = AutoApprovalRule(False, 1_000_000, Decimal(100))
    assert not auto_approves(off, 1, Balance(TokenKind.INFERENCE, 2_000_000, 0))


def test_list_prices_per_bundle_and_term() -> None:
    prices = PriceList()
    assert line_price(prices, Term.MONTHLY, 4_000_000, 0) == Decimal("180.00")
    assert line_price(prices, Term.YEARLY, 2_000_000, 1_000_000) == Decimal("1485.00")
    assert line_price(prices, Term.MONTHLY, 2_000_000, 0, terms=3) == Decimal("270.00")


TOO_MANY = MAX_TOKEN_AMOUNT + 1
SEATS = [Seat(1, 101, "u1@example.com", 1, 0), Seat(2, 102, "u2@example.com", 1, 0)]


@pytest.mark.parametrize(
    ("refuse", "param"),
    [
        (lambda: check_caps(TOO_MANY, 0, 200_000), "max_inference_tokens"),
        (lambda: check_caps(200_000, TOO_MANY, 200_000), "max_training_tokens"),
        (lambda: check_ask(TOO_MANY, "a big project"), "amount"),
        (lambda: AutoApprovalRule(True, TOO_MANY, Decimal(5)).check(), "max_tokens"),
        (
            lambda: plan_bulk(
                BulkRule(TokenKind.TRAINING, Strategy.FIXED, amount=TOO_MANY), SEATS, 10, 0
            ),
            "amount",
        ),
        (
            lambda: plan_bulk(
                BulkRule(TokenKind.TRAINING, Strategy.EVEN, maximum=TOO_MANY), SEATS, 10, 0
            ),
            "maximum",
        ),
    ],
)
def test_every_typed_token_amount_is_bounded_by_the_same_rule(
    refuse: Callable[[], object], param: str
) -> None:
    """The HTTP models stop more than 10^15 first; `qm` and every service meet the same bound."""
    with pytest.raises(InvalidInput, match=r"at most 1,000,000,000,000,000") as refused:
        refuse()
    assert refused.value.param == param


def test_a_purchase_above_the_bound_is_refused_by_name() -> None:
    found = token_problems(TOO_MANY - 1 + 2_000_000, 0, need_inference=True)
    assert "inference tokens are at most 1,000,000,000,000,000" in found
