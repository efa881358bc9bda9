"""CSV injection in every export, walked from the route table (every `.csv` route): names,
emails and dataset titles starting with = + - @, a tab or a carriage return come out with a
leading `'`, so a spreadsheet shows them as text instead of running them as formulas."""

from __future__ import annotations

import csv
import io
import re

from fastapi import FastAPI

from quartermaster.domain.principal import Principal
from quartermaster.domain.types import PurchaseKind
from quartermaster.services import datasets
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership, purchases
from quartermaster.services.identity.accounts import Registration, register
from tests.e2e.api_client import csv_of, enrol_mfa, new_client, sign_in
from tests.factories import PASSWORD, add_org
from tests.fakes.clock import FixedClock
from tests.security.world import api_operations, fill

TRIGGERS = "=+-@\t\r"
HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example","x")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
]
HOSTILE_EMAILS = ["=1+2@example.com", "+cmd@example.com", "-cmd@example.com"]
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _dangerous(cell: str) -> bool:
    return bool(cell) and cell[0] in TRIGGERS and not NUMBER.fullmatch(cell)


async def _hostile_members(ctx: Context, org_id: int) -> None:
    """People whose names and emails are formulas, one of whom titles a dataset with one."""
    operator = Principal.command_line()
    room = purchases.Order(inference_tokens=2_000_000)  # their minimum allocations
    await purchases.buy(ctx, operator, org_id, PurchaseKind.TOPUP, room)
    people = zip(
        HOSTILE_EMAILS + [f"n{i}@example.com" for i in range(3)], HOSTILE_NAMES, strict=True
    )
    for email, name in people:
        user_id = await register(ctx, Registration(email, PASSWORD, name, True))
        await membership.add_member(ctx, operator, org_id, email)
    owner = Principal(user_id, False, False, "session")
    await datasets.create(ctx, owner, "=IMPORTXML(A1)", shared_with_org=True)


async def test_every_export_neutralises_formula_cells(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx, members=2)
    await _hostile_members(ctx, org.org_id)
    exports = [path for method, path in api_operations(app) if path.endswith(".csv")]
    assert len(exports) == 4
    async with new_client(app) as http:
        await enrol_mfa(await sign_in(http, org.admin_emails[0]), clock)
        cells: dict[str, set[str]] = {}
        for path in exports:
            answer = await http.get(fill(path, {"org_id": str(org.org_id)}))
            assert answer.status_code == 200, (path, answer.text)
            rows = list(csv.reader(io.StringIO(csv_of(answer), newline="")))
            cells[path.rsplit("/", 1)[1]] = {cell for row in rows for cell in row}
    for name, found in cells.items():
        assert not [cell for cell in found if _dangerous(cell)], name
    for value in [*HOSTILE_NAMES, *HOSTILE_EMAILS]:  # there, neutralised (names come trimmed)
        assert f"'{value.strip()}" in cells["users.csv"] & cells["users-tokens.csv"], value
    assert any("IMPORTXML" in cell for cell in cells["activity.csv"])
