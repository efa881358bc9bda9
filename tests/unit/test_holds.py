"""The pure hold rules: one resolution per hold, the fit check, worst cases and overrun."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartermaster.domain import holds
from quartermaster.domain.errors import Conflict, InvalidInput
from quartermaster.domain.types import HoldState, ModelKind, TokenKind

CHAT = holds.Rates(TokenKind.INFERENCE, Decimal("1.5"), Decimal(6))
EMBED = holds.Rates(TokenKind.TRAINING, Decimal("0.5"), Decimal(0))


@pytest.mark.parametrize("target", sorted(holds.RESOLUTIONS))
def test_a_pending_hold_resolves_to_any_final_state(target: HoldState) -> None:
    assert holds.resolve(HoldState.PENDING, target) is target


@pytest.mark.parametrize("first", sorted(holds.RESOLUTIONS))
@pytest.mark.parametrize("second", sorted(holds.RESOLUTIONS))
def test_a_second_resolution_is_refused_and_names_the_first(
    first: HoldState, second: HoldState
) -> None:
    with pytest.raises(holds.HoldAlreadyResolved) as refused:
        holds.resolve(first, second)
    assert isinstance(refused.value, Conflict)
    assert refused.value.code == f"hold_already_{first.value}"


def test_rates_follow_the_model_kind() -> None:
    chat = holds.rates_for(ModelKind.CHAT, Decimal(2), Decimal(3), Decimal(9))
    embed = holds.rates_for(ModelKind.EMBEDDING, Decimal(2), Decimal(3), Decimal(9))
    speech = holds.rates_for(ModelKind.TRANSCRIPTION, Decimal(2), Decimal(3), Decimal(9))
    assert chat == holds.Rates(TokenKind.INFERENCE, Decimal(2), Decimal(3))
    assert embed == holds.Rates(TokenKind.TRAINING, Decimal(9), Decimal(0))
    assert speech == embed  # a transcription fills a dataset: training tokens


def test_the_worst_case_counts_every_output_token_the_call_may_produce() -> None:
    assert holds.worst_case(CHAT, 101, 10, 512) == 212  # ceil(151.5) + 60
    assert holds.worst_case(EMBED, 1001, 0, 0) == 501  # ceil(500.5)


def test_a_worst_case_beyond_the_models_limits_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 512"):
        holds.worst_case(CHAT, 1, 513, 512)
    with pytest.raises(InvalidInput, match="no output tokens"):
        holds.worst_case(EMBED, 1, 5, 0)
    with pytest.raises(InvalidInput, match="negative"):
        holds.charge(CHAT, -1, 0)


def test_a_refusal_says_what_is_left_of_the_cap() -> None:
    refusal = holds.refusal(3_000, 1_000_000, 998_000, 1_000, "2026-11", TokenKind.INFERENCE)
    assert refusal.code == "insufficient_quota"
    assert refusal.details == {
        "tokens_left": 1_000,
        "cap": 1_000_000,
        "period": "2026-11",
        "tokens_needed": 3_000,
    }
    assert refusal.message.startswith(
        "this call needs up to 3,000 tokens but 1,000 of your 1,000,000 are left for 2026-11; "
        "lower max_tokens,"
    )


def test_an_upload_refused_over_the_training_cap_is_told_to_send_less() -> None:
    refusal = holds.refusal(1_500_000, 1_000_000, 0, 0, "2026-11", TokenKind.TRAINING)
    assert refusal.message.startswith(
        "this upload or embedding needs 1,500,000 training tokens but 1,000,000 of your "
        "1,000,000 are left for 2026-11; send less,"
    )
    assert "max_tokens" not in refusal.message
    assert refusal.details["tokens_needed"] == 1_500_000


@given(
    cap=st.integers(0, 10**9),
    used=st.integers(0, 10**9),
    reserved=st.integers(0, 10**9),
    amount=st.integers(0, 10**9),
)
def test_what_is_left_is_never_negative_and_admits_exactly_the_holds_that_fit(
    cap: int, used: int, reserved: int, amount: int
) -> None:
    left = holds.tokens_left(cap, used, reserved)
    assert left >= 0
    assert (amount <= left) == (used + reserved + amount <= cap or (amount == 0 and left == 0))


@given(charged=st.integers(0, 10**6), held=st.integers(0, 10**6))
def test_overrun_is_what_was_charged_above_the_hold(charged: int, held: int) -> None:
    assert holds.overrun(charged, held) == max(0, charged - held)
    assert holds.overrun(charged, held) + min(charged, held) == charged
