"""Two-phase holds, TigerBeetle-style: a hold is pending until it resolves exactly once, to
settled, released or expired. These are the pure rules; `services/ledger/transfers.py` applies each
transition as one conditional update on `state = 'pending'`, so a race has one winner.

Errors raised here:
HoldAlreadyResolved (Conflict)   a second resolution; the code names the first one
QuotaExceeded                    the worst case does not fit in what is left of the cap
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from quartermaster.domain.errors import Conflict, InvalidInput, QuotaExceeded
from quartermaster.domain.rates import inference_charge, training_charge
from quartermaster.domain.types import HoldState, ModelKind, TokenKind

DEFAULT_HOLD_TTL_S = 600
"""Long enough for a slow stream to finish; short enough that a dead process frees its tokens."""

RESOLUTIONS = frozenset({HoldState.SETTLED, HoldState.RELEASED, HoldState.EXPIRED})


class HoldAlreadyResolved(Conflict):
    """The hold was settled, released or expired before; its first resolution stands."""


def resolve(current: HoldState, target: HoldState) -> HoldState:
    """The state after resolving a hold in `current` to `target`, or the named refusal."""
    assert target in RESOLUTIONS, f"{target} is not a resolution"
    if current is not HoldState.PENDING:
        raise HoldAlreadyResolved(
            f"this request's hold was already {current.value}; it cannot be {target.value} too",
            code=f"hold_already_{current.value}",
            details={"state": current.value},
        )
    return target


@dataclass(frozen=True)
class Rates:
    """The rates a hold was quoted at; settlement charges the same ones, whatever changes later.

    For training (embedding, transcription) models `input_rate` is the training rate and
    `output_rate` is 0.
    """

    kind: TokenKind
    input_rate: Decimal
    output_rate: Decimal


def rates_for(
    model_kind: ModelKind, input_rate: Decimal, output_rate: Decimal, training: Decimal
) -> Rates:
    if model_kind.trains:
        return Rates(TokenKind.TRAINING, training, Decimal(0))
    return Rates(TokenKind.INFERENCE, input_rate, output_rate)


def charge(rates: Rates, prompt_tokens: int, completion_tokens: int) -> int:
    """The platform tokens for a call: prompt (or ingested) tokens and completion tokens."""
    if prompt_tokens < 0 or completion_tokens < 0:
        raise InvalidInput("token counts cannot be negative", param="usage")
    if rates.kind is TokenKind.TRAINING:
        return training_charge(prompt_tokens + completion_tokens, rates.input_rate)
    return inference_charge(prompt_tokens, completion_tokens, rates.input_rate, rates.output_rate)


def worst_case(
    rates: Rates,
    prompt_tokens: int,
    max_output_tokens: int,
    model_max_output: int,
    choices: int = 1,
) -> int:
    """What to hold before the call: the prompt plus every output token the call may produce,
    `max_output_tokens` for each of its `choices` (a chat's `n`), reasoning tokens included.

    Training holds are exact (the upload is counted before it is embedded), so a training call
    never asks for output tokens.
    """
    if choices < 1:
        raise InvalidInput("a call asks for at least one choice", param="n")
    if rates.kind is TokenKind.TRAINING and max_output_tokens:
        raise InvalidInput("embedding calls produce no output tokens", param="max_tokens")
    if rates.kind is TokenKind.INFERENCE:
        require_output_limit(max_output_tokens, model_max_output)
    return charge(rates, prompt_tokens, max_output_tokens * choices)


def require_output_limit(max_output_tokens: int, model_max_output: int, model: str = "") -> int:
    """The rule on what a call may ask the model to write: no more than the model's limit.
    Checked before the hold (metering) and by the hold itself (`worst_case`)."""
    if max_output_tokens > model_max_output:
        raise InvalidInput(
            f"max_tokens is {max_output_tokens}; {model or 'this model'} writes at most "
            f"{model_max_output}",
            param="max_tokens",
        )
    return max_output_tokens


def tokens_left(cap: int, used: int, reserved: int) -> int:
    """What a new hold may still take this period (never negative, even after an overrun)."""
    return max(0, cap - used - reserved)


REFUSED = {
    TokenKind.INFERENCE: ("this call needs up to {amount} tokens", "lower max_tokens"),
    TokenKind.TRAINING: ("this upload or embedding needs {amount} training tokens", "send less"),
}
"""What was asked, and the first way out, in the words of what the person did: a chat may write
up to `max_tokens`; an upload or an embedding call is counted exactly before it is held, so
only sending less (fewer or smaller documents) makes it fit. The same words on every path."""


def refusal(
    amount: int, cap: int, used: int, reserved: int, period: str, kind: TokenKind
) -> QuotaExceeded:
    """The 429 a caller sees: how much the call needed, how much is left, and until when."""
    left = tokens_left(cap, used, reserved)
    needs, remedy = REFUSED[kind]
    return QuotaExceeded(
        f"{needs.format(amount=f'{amount:,}')} but {left:,} of your {cap:,} are left for "
        f"{period}; {remedy}, wait for the 1st, or ask for more (an admin, or a refill on a plan)",
        code="insufficient_quota",
        details={"tokens_left": left, "cap": cap, "period": period, "tokens_needed": amount},
    )


def overrun(charged: int, held: int) -> int:
    """Tokens charged above the hold (the estimate was short); charged anyway, never lost."""
    return max(0, charged - held)
