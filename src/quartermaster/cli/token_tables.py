"""`qm metrics tokens` for people: the statistics page's tables (years, months, this month's
projection, models and routes) as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table

from quartermaster.cli.tables import records, stacked, table

KINDS = (("inference", "Inference"), ("training", "Training (embedding)"))
USAGE = (
    ("Inference", "inference_tokens"),
    ("Training", "training_tokens"),
    ("Total", "total_tokens"),
    ("Inference requests", "inference_requests"),
    ("Training requests", "training_requests"),
)


def _usage(title: str, first: str, rows: Sequence[dict[str, Any]]) -> Table:
    return records(((first, "period"), *USAGE), reversed(rows), title)


def _projection(stats: dict[str, Any]) -> Table:
    rows = []
    for kind, label in KINDS:
        p = stats["projection"][kind]
        projected = p["projected_tokens"] if p["confident"] else "too early to tell"
        runs_out = (p["exhausted_at"] or "")[:10] or "not this month"
        rows.append([label, p["used_tokens"], p["tokens_per_day"], projected, runs_out])
    columns = ["Kind", "Used", "Per day", "Month-end projection", "Pool runs out"]
    return table(columns, rows, f"{stats['current_month']} so far, and where it is heading")


def _ranked(stats: dict[str, Any], by: str) -> Table:
    when = f"in {stats['models_period']}" if stats["models_period"] else "all time"
    rows = ([r[by], r["kind"], r["tokens"], r["requests"]] for r in stats[f"{by}s"])
    return table([by.capitalize(), "Kind", "Tokens", "Requests"], rows, f"By {by}, {when}")


def statistics(stats: dict[str, Any]) -> Group:
    """Projection, years, months, models, and routes when any call was booked by one."""
    parts = [_projection(stats), _usage("By year", "Year", stats["years"])]
    parts += [_usage("By month", "Month", stats["months"]), _ranked(stats, "model")]
    if stats["routes"]:
        parts.append(_ranked(stats, "route"))
    return stacked(*parts)
