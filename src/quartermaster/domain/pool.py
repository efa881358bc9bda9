"""What an organization bought for a month: its pool, for each kind of token.

A purchase gives its tokens to every month whose first day falls in [starts_on, ends_on).
A subscription line (monthly or yearly term) spans its term; a top-up spans exactly one month,
so it counts for that month only and nothing carries over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from quartermaster.domain.periods import parse_period


class PurchaseLine(Protocol):
    inference_tokens: int
    training_tokens: int
    starts_on: date
    ends_on: date


@dataclass(frozen=True)
class Pool:
    inference_tokens: int
    training_tokens: int


def month_first_day(period: str) -> date:
    year, month = parse_period(period)
    return date(year, month, 1)


def counts_for(line: PurchaseLine, period: str) -> bool:
    """Whether `line` gives tokens to `period`."""
    first = month_first_day(period)
    return line.starts_on <= first < line.ends_on


def pool_for(period: str, lines: list[PurchaseLine]) -> Pool:
    """The org's pool in `period`: the sum of the lines that count for it."""
    active = [line for line in lines if counts_for(line, period)]
    return Pool(
        inference_tokens=sum(line.inference_tokens for line in active),
        training_tokens=sum(line.training_tokens for line in active),
    )
