"""`qm ledger check` and `qm ledger sweep` as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from quartermaster.services.context import Context
from quartermaster.store.models import UsageCounter
from tests.e2e.test_cli import env, run_qm  # noqa: F401 - `env` is the CLI tests' fixture
from tests.integration.ledger_fixtures import new_user


async def test_check_passes_on_a_clean_ledger_and_names_a_broken_one(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    swept = await asyncio.to_thread(run_qm, ["ledger", "sweep", "--json"], env, tmp_path)
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout) == {"expired": 0}
    clean = await asyncio.to_thread(run_qm, ["ledger", "check"], env, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "every invariant holds" in clean.stdout
    user_id = await new_user(ctx)
    async with ctx.uow.begin() as tx:
        tx.session.add(
            UsageCounter(user_id=user_id, period="2026-11", kind="inference", used=5, reserved=0)
        )
        await tx.commit()
    broken = await asyncio.to_thread(run_qm, ["ledger", "check", "--json"], env, tmp_path)
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert not report["ok"]
    assert {d["invariant"] for d in report["differences"]} == {
        "events_match_counters",
        "rollups_match_counters",
    }
