"""Exports as the people who open them read them: accented names come through Python's csv
and a spreadsheet reader alike, because every file starts with a UTF-8 byte-order mark (Excel
reads a file without one in the machine's code page and shows "Zoë" as "ZoÃ«")."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

import pandas
from fastapi import FastAPI

from quartermaster.domain.principal import Principal
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership
from quartermaster.services.identity.accounts import Registration, register
from tests.e2e.api_client import enrol_mfa, new_client, sign_in
from tests.factories import PASSWORD, add_org
from tests.fakes.clock import FixedClock

ACCENTED = "Zoë Ångström-Núñez"
HOSTILE = "=Ça+1"


async def test_accented_names_read_back_in_python_and_in_a_spreadsheet_reader(
    app: FastAPI, ctx: Context, clock: FixedClock, tmp_path: Path
) -> None:
    org = await add_org(ctx, name="Société Générale d'Essai")
    for email, name in (("zoe@example.com", ACCENTED), ("cam@example.com", HOSTILE)):
        await register(ctx, Registration(email, PASSWORD, name, True))
        await membership.add_member(ctx, Principal.command_line(), org.org_id, email)
    async with new_client(app) as http:
        await enrol_mfa(await sign_in(http, org.admin_emails[0]), clock)
        answer = await http.get(f"/api/orgs/{org.org_id}/exports/users-tokens.csv")
    saved = tmp_path / "users-tokens.csv"
    saved.write_bytes(answer.content)
    assert saved.read_bytes().startswith(codecs.BOM_UTF8)
    with saved.open(newline="", encoding="utf-8-sig") as handle:
        by_python = {row["email"]: row["name"] for row in csv.DictReader(handle)}
    sheet = pandas.read_csv(saved, dtype=str, keep_default_na=False)
    by_sheet = dict(zip(sheet["email"], sheet["name"], strict=True))
    assert list(sheet.columns)[:1] == ["user_id"]  # the mark is not read into the first header
    for names in (by_python, by_sheet):
        assert names["zoe@example.com"] == ACCENTED
        assert names["cam@example.com"] == f"'{HOSTILE}"  # still shown as text, not run
