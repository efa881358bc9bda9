"""Building blocks of the ledger's single statements: everything they take is a bound parameter,
so each statement is built, keyed and compiled once (store/hot.py runs them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, Table, bindparam, select

from quartermaster.store.models import ModelCatalogEntry, UsageCounter


def bound(table: Table, names: list[str] | tuple[str, ...]) -> Select[Any]:
    """One row of bound parameters named (and typed) after `table`'s columns."""
    return select(*(bindparam(f"b_{name}", type_=table.c[name].type) for name in names))


def params(values: dict[str, Any]) -> dict[str, Any]:
    """Bound names carry a prefix: SQLAlchemy reserves a column's own name in INSERT/UPDATE."""
    return {f"b_{name}": value for name, value in values.items()}


def model_columns() -> list[ColumnElement[Any]]:
    """The model's facts a reserve's guess keeps; both guesses (a member's, an individual's)
    read them under these names."""
    m = ModelCatalogEntry
    return [
        m.id.label("model_id"),
        m.kind.expression,
        m.input_rate.expression,
        m.output_rate.expression,
        m.training_rate.expression,
        m.max_output_tokens.expression,
    ]


def counter_is_bound() -> list[ColumnElement[bool]]:
    """The member's counter row for `b_user_id`, `b_period`, `b_kind`."""
    return [
        UsageCounter.user_id == bindparam("b_user_id"),
        UsageCounter.period == bindparam("b_period"),
        UsageCounter.kind == bindparam("b_kind"),
    ]
