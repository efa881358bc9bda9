"""The breakdowns by model and by route add up the same months, each ranked most used first."""

from quartermaster.domain.types import TokenKind
from quartermaster.services.metrics.org_usage import ModelMonth
from quartermaster.services.metrics.token_stats import by_model, by_route

INFERENCE, TRAINING = TokenKind.INFERENCE, TokenKind.TRAINING
SUMS = [
    ModelMonth("2026-10", INFERENCE, "chat-a", "chat.completions", 100, 2),
    ModelMonth("2026-11", INFERENCE, "chat-a", "messages", 300, 3),
    ModelMonth("2026-11", INFERENCE, "chat-b", "chat.completions", 50, 1),
    ModelMonth("2026-11", TRAINING, "embed", "datasets", 70, 1),
    ModelMonth("2026-11", TRAINING, "embed", "search", 5, 4),
]


def test_by_route_adds_up_every_model_by_route_and_kind_most_used_first() -> None:
    assert by_route(SUMS, None) == [
        {"route": "messages", "kind": "inference", "tokens": 300, "requests": 3},
        {"route": "chat.completions", "kind": "inference", "tokens": 150, "requests": 3},
        {"route": "datasets", "kind": "training", "tokens": 70, "requests": 1},
        {"route": "search", "kind": "training", "tokens": 5, "requests": 4},
    ]


def test_by_route_in_one_month_and_by_model_add_up_to_the_same_totals() -> None:
    november = [(r["route"], r["tokens"]) for r in by_route(SUMS, "2026-11")]
    assert november == [
        ("messages", 300),
        ("datasets", 70),
        ("chat.completions", 50),
        ("search", 5),
    ]
    for period in (None, "2026-10", "2026-11"):
        routes, models = by_route(SUMS, period), by_model(SUMS, period)
        for measure in ("tokens", "requests"):
            assert sum(r[measure] for r in routes) == sum(m[measure] for m in models)
    assert by_model(SUMS, None)[0] == {
        "model": "chat-a",
        "kind": "inference",
        "tokens": 400,
        "requests": 5,
    }
