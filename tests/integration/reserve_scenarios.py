"""The scenarios test_reserve_paths_agree.py plays, and the Hypothesis strategy drawing them.

A scenario is one example's whole story, as data: who calls (an enterprise member, or an
individual on a plan), with which model, at which moment and in which time zone; the state the
fast path's guess was made in and how long before the call; what is changed behind the guess's
back (`Change`, in `ORDER`); and the call itself (tokens, API key, whether the month's counter row
exists). Keeping it plain data lets the fixed `CASES` name a rule's outcome as a field or two
replaced on one scenario, and lets Hypothesis shrink a failure to the smallest story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from quartermaster.domain.rate_limits import Limits

ZONES = ("UTC", "Pacific/Auckland", "America/Los_Angeles")
MOMENTS = (
    datetime(2026, 11, 15, 12, 0, tzinfo=UTC),  # mid-month everywhere
    datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC),  # November's last instant in UTC
    datetime(2026, 12, 1, 0, 0, tzinfo=UTC),  # December's first in UTC
    datetime(2026, 11, 30, 11, 0, tzinfo=UTC),  # December's first in Auckland (+13)
    datetime(2026, 12, 1, 7, 59, 59, tzinfo=UTC),  # November's last second in Los Angeles
    datetime(2026, 12, 1, 8, 0, tzinfo=UTC),  # December's first in Los Angeles (-8)
)
"""When the compared call is made."""
GAPS = (
    timedelta(0),
    timedelta(microseconds=1),
    timedelta(seconds=1),
    timedelta(seconds=61),
    timedelta(hours=12),
    timedelta(days=1),
)
"""How long before it the guess was made: the same minute, the month before, the day before."""
RATES = st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("1.5"), Decimal(3), Decimal(0)])
KEYS = ("none", "valid", "expires later", "expired", "revoked", "another user's", "unknown")
"""The API key passed to the fast path (`Call.key_hash`); "none": the caller was authenticated."""


@dataclass(frozen=True)
class Model:
    embedding: bool
    input_rate: Decimal
    output_rate: Decimal
    training_rate: Decimal
    max_output_tokens: int


@dataclass(frozen=True)
class Change:
    """One thing changed behind the fast path's guess (`value` says how, when it can vary)."""

    what: str
    value: Any = None


ORDER = (
    "model disabled",
    "model repriced",
    "max output lowered",
    "banned",
    "unpaid",
    "org models",
    "rate limits",
    "pool",
    "time zone",
    "plan switched",
    "plan models",
    "plan priced",
    "plan withdrawn",
    "payment",
    "refill",
    "allocation",
    "plan tokens",
    "new default plan",
    "removed from the org",
    "moved to another org",
    "joined an org",
)
"""The order changes are made in: a cap set relative to the call sees the final rates, zone
and plan; leaving or joining an org comes last."""


@dataclass(frozen=True)
class Scenario:
    member: bool
    """An enterprise member (allocation, org pool), else an individual on a plan."""
    model: Model
    zone: str
    """The org's time zone (members)."""
    pool_through_prior_month: bool
    """The org bought its pool only up to the month of the guess (members)."""
    limits: Limits
    """The org's rate limits when the guess is made (members)."""
    plan: str
    """"default" (the seeded free plan), or a plan of the example's own: "free", "monthly" or
    "yearly" (paid for the guess's month, or for twelve months from it)."""
    listed: bool
    """The org's list, or the example's own plan's, names the model (else there is no list:
    every enabled model)."""
    prior_at: datetime
    now: datetime
    prior_usage: tuple[int, int] | None
    """What the month's first call settled at (None: released)."""
    remember: bool
    """The fast path took a call before the changes, so the process holds a guess."""
    keep_pending: bool
    """That call's hold is still pending."""
    changes: tuple[Change, ...]
    prompt_tokens: int
    max_output_tokens: int
    key: str
    counter_row: bool
    """The month's counter row exists for the compared call."""


COMMON_CHANGES = [
    st.just(Change("model disabled")),
    st.builds(Change, st.just("model repriced"), st.tuples(RATES, RATES, RATES)),
    st.builds(Change, st.just("max output lowered"), st.sampled_from([0, 8, 300, 4_096])),
]
SLACK = st.integers(-2, 2)
"""A cap set to exactly the call's worst case on top of the month's usage, plus this."""
MEMBER_CHANGES = [
    st.just(Change("banned")),
    st.just(Change("unpaid")),
    st.just(Change("removed from the org")),
    st.builds(
        Change,
        st.just("allocation"),
        st.one_of(SLACK, st.sampled_from(["zero", "below usage", "raised", "other kind"])),
    ),
    st.builds(Change, st.just("pool"), st.sampled_from(["ended", "none of this kind"])),
    st.builds(Change, st.just("org models"), st.sampled_from(["ours", "another", "every"])),
    st.builds(
        Change,
        st.just("rate limits"),
        st.builds(
            Limits,
            st.sampled_from([None, 1, 2, 3, 50]),
            st.sampled_from([None, 10, 200, 5_000, 100_000]),
        ),
    ),
    st.builds(Change, st.just("time zone"), st.sampled_from(ZONES)),
    st.builds(Change, st.just("moved to another org"), st.sampled_from(ZONES)),
]
INDIVIDUAL_CHANGES = [
    st.builds(Change, st.just("plan switched"), st.sampled_from(["free", "unpaid", "paid"])),
    st.builds(
        Change, st.just("plan models"), st.sampled_from(["ours", "another", "none", "every"])
    ),
    st.builds(Change, st.just("plan tokens"), st.one_of(SLACK, st.just("zero"))),
    st.builds(Change, st.just("plan priced"), st.sampled_from(["monthly", "yearly"])),
    st.just(Change("plan withdrawn")),
    st.builds(
        Change,
        st.just("payment"),
        st.sampled_from(["withdrawn", "for next month only", "for last month only"]),
    ),
    st.builds(Change, st.just("refill"), st.sampled_from(["same kind", "other kind"])),
    st.builds(Change, st.just("joined an org"), st.sampled_from(ZONES)),
    st.builds(Change, st.just("new default plan"), st.one_of(SLACK, st.just("zero"))),
]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    member = draw(st.booleans())
    embedding = draw(st.booleans())
    model = Model(
        embedding,
        draw(RATES),
        draw(RATES),
        draw(RATES),
        draw(st.sampled_from([512, 64])),
    )
    now = draw(st.sampled_from(MOMENTS))
    remember = draw(st.booleans())
    kinds = COMMON_CHANGES + (MEMBER_CHANGES if member else INDIVIDUAL_CHANGES)
    changes = draw(st.lists(st.one_of(kinds), max_size=2, unique_by=lambda c: c.what))
    return Scenario(
        member=member,
        model=model,
        zone=draw(st.sampled_from(ZONES)),
        pool_through_prior_month=draw(st.booleans()),
        limits=Limits(
            draw(st.sampled_from([None, 2, 3, 50])), draw(st.sampled_from([None, 50, 5_000]))
        ),
        plan=draw(st.sampled_from(["default", "free", "monthly", "yearly"])),
        listed=draw(st.booleans()),
        prior_at=now - draw(st.sampled_from(GAPS)),
        now=now,
        prior_usage=draw(st.none() | st.tuples(st.integers(0, 3_000), st.integers(0, 3_000))),
        remember=remember,
        keep_pending=remember and draw(st.booleans()),
        changes=tuple(sorted(changes, key=lambda c: ORDER.index(c.what))),
        prompt_tokens=draw(st.integers(0, 40) | st.integers(-1, 2_500)),
        max_output_tokens=draw(
            st.integers(0, 7).map(lambda n: int(n == 7))  # 1: refused, embeddings have no output
            if embedding
            else st.integers(0, 7).flatmap(lambda n: st.integers(0, 600 if n == 7 else 60))
        ),
        key=draw(st.sampled_from(KEYS)) if draw(st.integers(0, 3)) == 0 else "none",
        counter_row=draw(st.integers(0, 4)) > 0,
    )
