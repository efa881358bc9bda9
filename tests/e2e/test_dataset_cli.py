"""`qm dataset …` as an operator runs it: a folder ingested with the local model, a refused
file reported without stopping the others, JSON for scripts, a table for people."""

from __future__ import annotations

import json
from pathlib import Path

from quartermaster.services.context import Context
from tests.e2e.test_cli import env, run_qm
from tests.factories import add_org
from tests.fakes import documents

__all__ = ["env"]


async def test_a_folder_is_ingested_and_a_bad_file_is_named(
    ctx: Context, env: dict[str, str], tmp_path: Path
) -> None:
    email = (await add_org(ctx, admins=1, members=1)).member_emails[0]
    folder = tmp_path / "handbook"
    (folder / "sub").mkdir(parents=True)
    (folder / "boiler.txt").write_text("The boiler is serviced every May.")
    (folder / "sub" / "leave.docx").write_bytes(documents.docx("Twenty-five days of leave."))
    (folder / "sub" / "cut.pdf").write_bytes(documents.corrupt_pdf())
    (folder / "photo.heic").write_bytes(b"ftypheic")  # not a supported type: skipped in folders

    created = run_qm(["dataset", "create", "Handbook", "--user", email, "--json"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    dataset_id = str(json.loads(created.stdout)["id"])
    args = ["dataset", "ingest", str(folder), "--dataset", dataset_id, "--user", email]
    ingested = run_qm([*args, "--json"], env, tmp_path)
    assert ingested.returncode == 1  # one file was refused
    results = {Path(r["path"]).name: r for r in json.loads(ingested.stdout)}
    assert sorted(results) == ["boiler.txt", "cut.pdf", "leave.docx"]
    assert results["cut.pdf"]["code"] == "unreadable_document"
    assert results["boiler.txt"]["tokens_charged"] > 0

    again = run_qm(args, {**env, "COLUMNS": "200"}, tmp_path)
    assert "0 of 3 files stored" in again.stdout
    assert "already in this dataset" in again.stdout
    listed = run_qm(["dataset", "list", "--user", email], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "Handbook" in listed.stdout
