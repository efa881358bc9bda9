"""The org's monthly data table and its yearly totals, from (period, kind, tokens, requests)
sums. Months without usage between the first month shown and the last appear as zero rows, so a
chart of the table has no holes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from quartermaster.domain.periods import shift_period
from quartermaster.domain.types import TokenKind


@dataclass
class UsageRow:
    """Tokens and requests of one period (a month `YYYY-MM` or a year `YYYY`)."""

    period: str
    inference_tokens: int = 0
    training_tokens: int = 0
    inference_requests: int = 0
    training_requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.inference_tokens + self.training_tokens

    def add(self, kind: TokenKind, tokens: int, requests: int) -> None:
        if kind is TokenKind.INFERENCE:
            self.inference_tokens += tokens
            self.inference_requests += requests
        else:
            self.training_tokens += tokens
            self.training_requests += requests

    def as_dict(self) -> dict[str, int | str]:
        return {
            "period": self.period,
            "inference_tokens": self.inference_tokens,
            "training_tokens": self.training_tokens,
            "total_tokens": self.total_tokens,
            "inference_requests": self.inference_requests,
            "training_requests": self.training_requests,
        }


def monthly_table(
    sums: Iterable[tuple[str, TokenKind, int, int]], last: str | None = None
) -> list[UsageRow]:
    """One row per month from the first with usage to `last` (or the last with usage), oldest
    first, gaps filled with zeros."""
    rows: dict[str, UsageRow] = {}
    for period, kind, tokens, requests in sums:
        rows.setdefault(period, UsageRow(period)).add(kind, tokens, requests)
    if not rows:
        return []
    month, end = min(rows), max([*rows, last or min(rows)])
    table = []
    while month <= end:
        table.append(rows.get(month, UsageRow(month)))
        month = shift_period(month, 1)
    return table


def yearly_table(months: Iterable[UsageRow]) -> list[UsageRow]:
    years: dict[str, UsageRow] = {}
    for month in months:
        year = years.setdefault(month.period[:4], UsageRow(month.period[:4]))
        year.add(TokenKind.INFERENCE, month.inference_tokens, month.inference_requests)
        year.add(TokenKind.TRAINING, month.training_tokens, month.training_requests)
    return list(years.values())
