"""CSV for people who open it in a spreadsheet: every file starts with a UTF-8 byte-order mark
and its header row, cells a spreadsheet would run as a formula are neutralised, and its name says
whose data and when.

Without the byte-order mark Excel reads UTF-8 in the machine's legacy code page, and "Zoë"
shows as "ZoÃ«"; with it, Excel, LibreOffice and Google Sheets all read UTF-8, and Python reads
the file with `encoding="utf-8-sig"`.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula (or becomes one)
in Excel, LibreOffice and Google Sheets, so a member who names themselves `=HYPERLINK(...)`
could run it on the admin's machine (OWASP "CSV injection"). Such a cell gets a leading single
quote, which spreadsheets show as text; numbers are written by us, never neutralised.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BYTE_ORDER_MARK = "\ufeff"
Cell = str | int | bool | None


def safe_cell(value: Cell) -> str | int:
    """The cell as written: ints as they are, None empty, booleans as true/false, text that a
    spreadsheet would evaluate prefixed with a single quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_text(rows: Iterable[Sequence[Cell]]) -> str:
    """`rows` as CSV lines (CRLF, quoted where needed), every cell through `safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


def slug(text: str) -> str:
    """`ABC Corp.` → `abc-corp`: ASCII letters and digits joined by single hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60] or "org"


def export_filename(org_name: str, what: str, on: date) -> str:
    """`abc-corp-token-usage-2026-11-15.csv`: safe in any file system and HTTP header."""
    return f"{slug(org_name)}-{what}-{on.isoformat()}.csv"
