"""Member status and token requests from the command line, as an operator handles them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from quartermaster.domain.principal import Principal
from quartermaster.domain.types import TokenKind
from quartermaster.services.context import Context
from quartermaster.services.enterprise import token_requests
from tests.e2e.test_cli import env, run_qm  # noqa: F401 - `env` is the CLI tests' fixture
from tests.factories import add_org


async def test_ban_and_promote_from_the_command_line(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    org = await add_org(ctx)
    email = org.member_emails[0]
    args = ["org", "set-member", str(org.org_id), email, "--banned", "--role", "admin", "--json"]
    result = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) | {"user_id": 0} == {
        "user_id": 0,
        "role": "admin",
        "paid": True,
        "banned": True,
    }


async def test_list_and_approve_a_token_request(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    org = await add_org(ctx)
    member = Principal(org.member_ids[0], False, False, "session")
    asked = await token_requests.ask(ctx, member, TokenKind.INFERENCE, 100_000, "pilot project")
    listed = await asyncio.to_thread(
        run_qm, ["org", "requests", str(org.org_id), "--status", "pending", "--json"], env, tmp_path
    )
    assert [r["id"] for r in json.loads(listed.stdout)] == [asked["id"]]
    text = await asyncio.to_thread(run_qm, ["org", "requests", str(org.org_id)], env, tmp_path)
    assert f"{org.member_emails[0]} 100,000 inference: pilot project" in text.stdout
    assert f"user {org.member_ids[0]}" not in text.stdout
    decided = await asyncio.to_thread(
        run_qm,
        [
            "org",
            "decide",
            str(org.org_id),
            str(asked["id"]),
            "--approve",
            "--amount",
            "50000",
            "--note",
            "half for now",
            "--json",
        ],
        env,
        tmp_path,
    )
    assert decided.returncode == 0, decided.stderr
    view = json.loads(decided.stdout)
    assert (view["status"], view["approved_amount"], view["decision_note"]) == (
        "approved",
        50_000,
        "half for now",
    )
