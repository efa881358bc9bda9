"""`qm audit verify`, `qm export` and `qm metrics tokens` as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import select, update

from quartermaster.domain.routes import Route
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.store.models import AuditEvent
from tests.e2e.test_cli import env, run_qm, table_rows  # noqa: F401 - `env` is the CLI tests' fixture
from tests.factories import add_org
from tests.integration.ledger_fixtures import CHAT, EMBEDDING


async def test_verify_passes_then_names_the_tampered_activity_row(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    await add_org(ctx)
    clean = await asyncio.to_thread(run_qm, ["audit", "verify"], env, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "audit chain intact" in clean.stdout
    async with ctx.uow.begin() as tx:
        target = await tx.session.scalar(
            select(AuditEvent.id).where(AuditEvent.action == "org.provision")
        )
        await tx.session.execute(
            update(AuditEvent).where(AuditEvent.id == target).values(after={"name": "forged"})
        )
        await tx.commit()
    broken = await asyncio.to_thread(run_qm, ["audit", "verify", "--json"], env, tmp_path)
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["broken"]["event_id"] == target
    assert "edited" in report["broken"]["reason"]


async def test_export_writes_the_named_csv_into_a_directory(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    org = await add_org(ctx, name="Export Co")
    args = ["export", "users", str(org.org_id), "-o", str(tmp_path)]
    done = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert done.returncode == 0, done.stderr
    (written,) = await asyncio.to_thread(lambda: list(tmp_path.glob("export-co-users-*.csv")))
    lines = (await asyncio.to_thread(written.read_text, encoding="utf-8-sig")).splitlines()
    assert lines[0].startswith("user_id,email,name,role,status")
    assert len(lines) == 1 + 3
    bad = await asyncio.to_thread(
        run_qm, ["export", "activity", "1", "--from", "soon"], env, tmp_path
    )
    assert bad.returncode == 1
    assert "is not a date" in bad.stderr or "no organization" in bad.stderr


async def test_token_statistics_show_usage_by_model_and_by_route(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    org = await add_org(ctx, name="Routes Co")
    member = org.member_ids[0]
    for request_id, model, tokens, route in (
        ("cli-1", CHAT, 100, Route.MESSAGES),
        ("cli-2", CHAT, 30, Route.CHAT),
        ("cli-3", EMBEDDING, 40, Route.DATASETS),
    ):
        await ledger.reserve(ctx, member, model, tokens, 0, request_id, route=route)
        await ledger.settle(ctx, request_id, tokens, 0)
    args = ["metrics", "tokens", "Routes Co"]
    shown = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    routes = table_rows(shown.stdout, "By route, all time")
    assert routes == [
        ["Route", "Kind", "Tokens", "Requests"],
        ["messages", "inference", "100", "1"],
        ["chat.completions", "inference", "30", "1"],
        ["datasets", "training", "20", "1"],
    ]
    assert table_rows(shown.stdout, "By model, all time")[1:] == [
        [CHAT, "inference", "130", "2"],
        [EMBEDDING, "training", "20", "1"],
    ]
    years = {row[0]: row for row in table_rows(shown.stdout, "By year")}
    assert years["Year"][:4] == ["Year", "Inference", "Training", "Total"]
    assert years["2026"][1:4] == ["130", "20", "150"]
    months = {row[0]: row for row in table_rows(shown.stdout, "By month")}
    assert months["2026-11"][1:4] == ["130", "20", "150"]
    as_json = await asyncio.to_thread(run_qm, [*args, "--json"], env, tmp_path)
    stats = json.loads(as_json.stdout)
    heading = f"{stats['current_month']} so far, and where it is heading"
    projection = table_rows(shown.stdout, heading)
    assert [row[0] for row in projection] == ["Kind", "Inference", "Training (embedding)"]
    assert projection[0][3] == "Month-end projection"
    assert [(r["route"], r["requests"]) for r in stats["routes"]] == [
        ("messages", 1),
        ("chat.completions", 1),
        ("datasets", 1),
    ]
