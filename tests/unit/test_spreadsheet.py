import csv
import io
from datetime import date

import pytest

from quartermaster.domain.spreadsheet import csv_text, export_filename, safe_cell


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_is_shown_as_text(text: str) -> None:
    assert safe_cell(text) == "'" + text


def test_plain_text_and_numbers_are_written_as_they_are() -> None:
    assert safe_cell("ann@example.com") == "ann@example.com"
    assert safe_cell(-5) == -5
    assert safe_cell(None) == ""
    assert safe_cell(True) == "true"


def test_csv_text_neutralises_every_cell_and_parses_back() -> None:
    text = csv_text([["email", "tokens"], ['=HYPERLINK("http://x")', 12]])
    assert list(csv.reader(io.StringIO(text))) == [
        ["email", "tokens"],
        ['\'=HYPERLINK("http://x")', "12"],
    ]


def test_file_names_carry_the_org_and_date_safely() -> None:
    name = export_filename('ÄBC Corp. "East"/2', "users", date(2026, 11, 15))
    assert name == "abc-corp-east-2-users-2026-11-15.csv"
