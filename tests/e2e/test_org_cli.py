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
from tests.factories import add_org, add_user


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


async def test_piped_user_tables_keep_each_member_on_one_line(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """Rich wrapped piped output at 80 columns, splitting each row; the guides' column names."""
    org = await add_org(ctx)
    for command, cap_name in (("org", "Max train tokens"), ("metrics", "Max embedding tokens")):
        args = [command, "members", str(org.org_id)]
        lines = (await asyncio.to_thread(run_qm, args, env, tmp_path)).stdout.splitlines()
        assert cap_name in lines[0]
        assert max(len(line) for line in lines) > 80
        for email in org.admin_emails + org.member_emails:
            (row,) = [line for line in lines if email in line]
            assert "1,000,000" in row, row  # the inference cap (CAP) on the email's line
            assert "100,000" in row, row  # and the training cap


async def test_set_member_and_rate_limits_print_sentences(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    org = await add_org(ctx)
    email = org.member_emails[0]
    args = ["org", "set-member", str(org.org_id), email, "--unpaid", "--banned"]
    member = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert member.stdout.strip() == f"{email}: member, unpaid, banned"
    args = ["org", "rate-limits", str(org.org_id), "--rpm", "60", "--tpm", "200000"]
    limited = await asyncio.to_thread(run_qm, args, env, tmp_path)
    expected = "at most 60 calls and 200,000 tokens per member per minute"
    assert limited.stdout.strip() == f"{org.org_id}: {expected}"
    cleared = await asyncio.to_thread(run_qm, args[:3], env, tmp_path)
    assert cleared.stdout.strip() == f"{org.org_id}: no rate limits"


async def test_a_refusal_with_json_is_the_apis_error_object_on_stdout(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    org = await add_org(ctx)
    args = ["org", "set-member", str(org.org_id), org.admin_emails[0], "--role", "member"]
    refused = await asyncio.to_thread(run_qm, [*args, "--json"], env, tmp_path)
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert error["type"] == "conflict_error"
    assert "last admin" in error["message"]
    assert refused.stderr == ""
    said = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert (said.returncode, said.stdout) == (1, "")
    assert said.stderr.startswith("error: ")
    unknown = await asyncio.to_thread(
        run_qm, ["org", "summary", "No Such Co", "--json"], env, tmp_path
    )
    assert json.loads(unknown.stdout)["error"]["param"] == "org"


async def test_provisioning_takes_a_billing_address_and_additional_information(
    ctx: Context,
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    ann, bob = (f"{name}-{tmp_path.name}@example.com" for name in ("ann", "bob"))
    for email in (ann, bob):
        await add_user(ctx, email)
    name = f"Billed {tmp_path.name}"
    args = ["org", "provision", name, "-m", ann, "-m", bob, "-a", ann]
    args += ["--inference-tokens", "2000000"]
    unaddressed = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert unaddressed.returncode == 2
    assert "--billing-address" in unaddressed.stderr
    blank = await asyncio.to_thread(
        run_qm, [*args, "--billing-address", " ", "--json"], env, tmp_path
    )
    assert json.loads(blank.stdout)["error"]["problems"] == [
        "the billing address is required: where the invoices go"
    ]
    args += ["--billing-address", "1 Main St", "--additional-information", "PO 7", "--json"]
    made = await asyncio.to_thread(run_qm, args, env, tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    org_id = json.loads(made.stdout)["org_id"]
    summary = await asyncio.to_thread(run_qm, ["org", "summary", name, "--json"], env, tmp_path)
    shown = json.loads(summary.stdout)
    assert (shown["org_id"], shown["billing_address"]) == (org_id, "1 Main St")
    assert shown["additional_information"] == "PO 7"
