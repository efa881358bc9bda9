"""The one bound on a token amount a person may type (an allocation, a purchase, a request, a
rule): whole, not negative, and at most `MAX_TOKEN_AMOUNT`. The HTTP models and forms reject
more before a service is called; the services check it again, so `qm` and every other caller
meet the same rule."""

from __future__ import annotations

from quartermaster.domain.errors import InvalidInput

MAX_TOKEN_AMOUNT = 10**15
"""A quadrillion: far above any real budget, well inside a 64-bit counter after a century of
months."""


def check_token_amount(value: int, param: str) -> int:
    """`value` when it is a token amount anyone may ask for; InvalidInput naming `param` if not."""
    if value < 0:
        raise InvalidInput(f"{param} cannot be negative", param=param)
    if value > MAX_TOKEN_AMOUNT:
        raise InvalidInput(f"{param} is at most {MAX_TOKEN_AMOUNT:,} tokens", param=param)
    return value
