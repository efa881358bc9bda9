"""Turning a model's tokens into platform tokens: exact decimal rates, always rounded up."""

from __future__ import annotations

import math
from decimal import Decimal

from quartermaster.domain.errors import InvalidInput


def _ceil(value: Decimal) -> int:
    return math.ceil(value)


def inference_charge(
    prompt_tokens: int, completion_tokens: int, input_rate: Decimal, output_rate: Decimal
) -> int:
    """ceil(prompt × input_rate + completion × output_rate), in platform tokens."""
    assert prompt_tokens >= 0, "token counts are never negative"
    assert completion_tokens >= 0, "token counts are never negative"
    return _ceil(prompt_tokens * input_rate + completion_tokens * output_rate)


def training_charge(tokens_ingested: int, training_rate: Decimal) -> int:
    """ceil(tokens × training_rate), in platform tokens."""
    assert tokens_ingested >= 0, "token counts are never negative"
    return _ceil(tokens_ingested * training_rate)


def parse_rate(text: str | int | Decimal, field: str) -> Decimal:
    """A rate from user input: a non-negative finite decimal, or a message naming the field."""
    try:
        rate = Decimal(str(text))
    except ArithmeticError:
        raise InvalidInput(f"{field} must be a decimal number such as 0.5", param=field) from None
    if not rate.is_finite() or rate < 0:
        raise InvalidInput(f"{field} must be zero or more", param=field)
    return rate
