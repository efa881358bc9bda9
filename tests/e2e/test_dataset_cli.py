"""`qm dataset …` as an operator runs it: a folder ingested with the local model, a refused
file reported without stopping the others, JSON for scripts, a table for people; progress by
chunks embedded, in order to 100 %; one document deleted."""

from __future__ import annotations

import json
import re
from pathlib import Path

from quartermaster.services.context import Context
from tests.e2e.test_cli import env, run_qm
from tests.e2e.test_dataset_uploads_api import long_text
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


PROGRESS = re.compile(r"^(\S+) \(\d+ of \d+\): (\w+) (\d+)/(\d+) (\w+) \(([\d.]+) %\)$")


def progress_lines(stderr: str) -> list[tuple[str, str, int, int, str, float]]:
    """`file (i of n): stage done/total unit (percent %)`, every line but the last."""
    lines = stderr.splitlines()[:-1]
    found = [PROGRESS.match(line) for line in lines]
    assert all(found), stderr
    return [(m[1], m[2], int(m[3]), int(m[4]), m[5], float(m[6])) for m in found if m is not None]


async def test_ingest_shows_progress_by_chunks_and_one_document_is_deleted(
    ctx: Context, env: dict[str, str], tmp_path: Path
) -> None:
    email = (await add_org(ctx, admins=1, members=1)).member_emails[0]
    (tmp_path / "long.txt").write_bytes(long_text(700))  # two batches of 32 chunks or more
    (tmp_path / "boiler.txt").write_text("The boiler is serviced every May.")
    created = run_qm(["dataset", "create", "Manuals", "--user", email, "--json"], env, tmp_path)
    dataset = str(json.loads(created.stdout)["id"])
    files = [str(tmp_path / "long.txt"), str(tmp_path / "boiler.txt")]
    ingest = ["dataset", "ingest", *files, "--dataset", dataset, "--user", email]
    ingested = run_qm(ingest, env, tmp_path)
    assert ingested.returncode == 0, ingested.stderr

    assert ingested.stderr.splitlines()[-1] == "done: 2 files (100 %)"
    steps = progress_lines(ingested.stderr)
    percents = [step[5] for step in steps]
    assert percents == sorted(percents)
    embedded = [
        (done, total, unit)
        for name, stage, done, total, unit, _ in steps
        if name == "long.txt" and stage == "embedding"
    ]
    assert len(embedded) >= 3  # from 0, then after each batch of 32
    assert {unit for *_, unit in embedded} == {"chunks"}
    assert embedded[0][0] == 0
    assert embedded[-1][0] == embedded[-1][1]

    show = ["dataset", "show", dataset, "--user", email, "--json"]
    shown = json.loads(run_qm(show, env, tmp_path).stdout)
    long_id = next(d["id"] for d in shown["documents"] if d["filename"] == "long.txt")
    delete = ["dataset", "delete-document", str(long_id), "--dataset", dataset, "--user", email]
    assert run_qm(delete, env, tmp_path).returncode == 0
    after = json.loads(run_qm(show, env, tmp_path).stdout)
    assert [d["filename"] for d in after["documents"]] == ["boiler.txt"]
    gone = run_qm(delete, env, tmp_path)
    assert gone.returncode == 1
    assert f"no document {long_id} in this dataset" in gone.stderr
