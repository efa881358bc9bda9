"""Tables for people: a bold title, a header, one row a line, numbers right-aligned with
separators and no borders, so a piped table still reads line by line in `grep` or `cut`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

Cell = str | int | bool | None


def shown(cell: Cell) -> Text:
    """A cell as text: 2,000,000; yes/no; "-" for nothing; text never read as markup."""
    if cell is None:
        return Text("-")
    if isinstance(cell, bool):
        return Text("yes" if cell else "no")
    if isinstance(cell, int):
        return Text(f"{cell:,}")
    return Text(cell)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Cell]], title: str | None = None
) -> Table:
    """`rows` under `columns`; a column of whole numbers is right-aligned."""
    cells = [list(row) for row in rows]
    result = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for index, name in enumerate(columns):
        numeric = bool(cells) and all(_is_number(row[index]) for row in cells)
        result.add_column(name, justify="right" if numeric else "left")
    for row in cells:
        result.add_row(*(shown(cell) for cell in row))
    return result


def records(
    columns: Sequence[tuple[str, str]], rows: Iterable[Mapping[str, Any]], title: str | None = None
) -> Table:
    """`rows` as a table of `columns`, each a (header, key) pair."""
    values = ([row[key] for _, key in columns] for row in rows)
    return table([header for header, _ in columns], values, title)


def _is_number(cell: Cell) -> bool:
    return isinstance(cell, int) and not isinstance(cell, bool)


def stacked(*parts: RenderableType) -> Group:
    """Tables (and lines) one under another, a blank line between two."""
    spaced: list[RenderableType] = []
    for index, part in enumerate(parts):
        spaced += [Text(""), part] if index else [part]
    return Group(*spaced)
