"""What tokens cost: bundles, terms and the configurable price list.

Inference tokens are sold in bundles of 2,000,000 and training tokens in bundles of 1,000,000.
A subscription line runs for whole terms (a monthly term is one month, a yearly term twelve) and
gives its tokens to every month it spans; a top-up gives its tokens to one month and is priced at
the monthly rate. Money is Decimal with a currency, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from quartermaster.domain.amounts import MAX_TOKEN_AMOUNT
from quartermaster.domain.errors import InvalidInput
from quartermaster.domain.types import Term

INFERENCE_BUNDLE_TOKENS = 2_000_000
TRAINING_BUNDLE_TOKENS = 1_000_000
TERM_MONTHS = {Term.MONTHLY: 1, Term.YEARLY: 12}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PriceList:
    """Prices per bundle and term; the defaults follow the reference ($90 a month, $990 a year
    per 2M inference tokens). Training bundles cost the same per token as inference ones."""

    inference_bundle_monthly: Decimal = Decimal("90.00")
    inference_bundle_yearly: Decimal = Decimal("990.00")
    training_bundle_monthly: Decimal = Decimal("45.00")
    training_bundle_yearly: Decimal = Decimal("495.00")
    currency: str = "USD"

    def per_bundle(self, term: Term) -> tuple[Decimal, Decimal]:
        """(inference, training) price of one bundle for one term."""
        if term is Term.YEARLY:
            return self.inference_bundle_yearly, self.training_bundle_yearly
        return self.inference_bundle_monthly, self.training_bundle_monthly


def token_problems(
    inference_tokens: int, training_tokens: int, *, need_inference: bool
) -> list[str]:
    """Every way the amounts break the bundle rules (empty when they are fine)."""
    problems = [
        f"{name} are at most {MAX_TOKEN_AMOUNT:,}"
        for name, amount in (
            ("inference tokens", inference_tokens),
            ("training tokens", training_tokens),
        )
        if amount > MAX_TOKEN_AMOUNT
    ]
    if inference_tokens < 0 or inference_tokens % INFERENCE_BUNDLE_TOKENS:
        problems.append(
            f"inference tokens must be a multiple of {INFERENCE_BUNDLE_TOKENS:,} "
            f"(got {inference_tokens:,})"
        )
    elif need_inference and inference_tokens == 0:
        problems.append(
            f"inference tokens must be a positive multiple of {INFERENCE_BUNDLE_TOKENS:,} (got 0)"
        )
    if training_tokens < 0 or training_tokens % TRAINING_BUNDLE_TOKENS:
        problems.append(
            f"training tokens must be a multiple of {TRAINING_BUNDLE_TOKENS:,} "
            f"(got {training_tokens:,})"
        )
    if not problems and inference_tokens == training_tokens == 0:
        problems.append("a purchase needs some inference or training tokens")
    return problems


def check_tokens(inference_tokens: int, training_tokens: int) -> None:
    """Refuse amounts that are not whole bundles, naming each problem."""
    problems = token_problems(inference_tokens, training_tokens, need_inference=False)
    if problems:
        raise InvalidInput("; ".join(problems), param="inference_tokens", code="not_whole_bundles")


def line_price(
    prices: PriceList, term: Term, inference_tokens: int, training_tokens: int, terms: int = 1
) -> Decimal:
    """The price of `terms` consecutive terms of a line with these monthly amounts."""
    inference, training = prices.per_bundle(term)
    total = (
        inference * (inference_tokens // INFERENCE_BUNDLE_TOKENS)
        + training * (training_tokens // TRAINING_BUNDLE_TOKENS)
    ) * terms
    return total.quantize(CENT)


def check_price(price: Decimal) -> Decimal:
    """A negotiated price overrides the list price; it is money, so cents and never negative."""
    if not price.is_finite() or price < 0:
        raise InvalidInput("price must be zero or more", param="price")
    return price.quantize(CENT)


def check_currency(currency: str) -> str:
    code = currency.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise InvalidInput(f"currency {currency!r} is not a 3-letter ISO code", param="currency")
    return code


def months_after(first_day: date, months: int) -> date:
    """The first day of the month `months` after `first_day` (itself a first day)."""
    index = first_day.year * 12 + first_day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
