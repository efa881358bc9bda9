"""Account metrics over HTTP as an admin uses them: the numbers agree with the ledger across a
month boundary, exports stream as parseable CSV with formulas neutralised, the activity log
merges changes, sign-ins and metered calls (a member's keys, MFA and card changes included, by
name), and a member sees their own window."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from quartermaster.domain.principal import Principal
from quartermaster.domain.routes import Route
from quartermaster.services import ledger
from quartermaster.services.context import Context
from quartermaster.services.enterprise import membership
from quartermaster.services.identity import cac, mfa
from quartermaster.services.identity.accounts import Registration, register
from quartermaster.services.ledger import check
from quartermaster.services.metrics import exports
from quartermaster.store.models import UsageMonthly
from tests.e2e.api_client import Browser, csv_of, enrol_mfa, new_client, sign_in
from tests.factories import PASSWORD, OrgFixture, add_org
from tests.fakes.clock import FixedClock
from tests.integration.ledger_fixtures import CHAT, EMBEDDING

_calls = itertools.count()


async def _spend(
    ctx: Context, user_id: int, prompt: int, completion: int, route: Route = Route.CHAT
) -> None:
    request_id = f"metrics-{next(_calls)}"
    await ledger.reserve(ctx, user_id, CHAT, prompt, completion, request_id, route=route)
    await ledger.settle(ctx, request_id, prompt, completion)


async def _train(ctx: Context, user_id: int, tokens: int) -> None:
    request_id = f"metrics-{next(_calls)}"
    await ledger.reserve(ctx, user_id, EMBEDDING, tokens, 0, request_id, route=Route.DATASETS)
    await ledger.settle(ctx, request_id, tokens, 0)


async def _org_with_two_months(ctx: Context, clock: FixedClock) -> OrgFixture:
    """Usage on 31 October and on 1 and 2 November (UTC); the clock ends on 2 November."""
    clock.set(datetime(2026, 10, 20, tzinfo=UTC))
    org = await add_org(ctx, name="Metrics Corp.")
    member = org.member_ids[0]
    clock.set(datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    await _spend(ctx, member, 100, 50)
    clock.set(datetime(2026, 11, 1, 0, 1, tzinfo=UTC))
    await _spend(ctx, member, 40, 20)
    await _train(ctx, member, 200)
    clock.set(datetime(2026, 11, 2, 12, tzinfo=UTC))
    await _spend(ctx, org.member_ids[1], 10, 10, Route.MESSAGES)
    return org


async def _admin(
    app: FastAPI, http: httpx.AsyncClient, org: OrgFixture, clock: FixedClock
) -> Browser:
    return await enrol_mfa(await sign_in(http, org.admin_emails[0]), clock)


async def _rollup(ctx: Context, user_id: int, period: str, kind: str) -> int:
    async with ctx.uow.begin(write=False) as tx:
        total = await tx.session.scalar(
            select(func.coalesce(func.sum(UsageMonthly.tokens), 0)).where(
                UsageMonthly.user_id == user_id,
                UsageMonthly.period == period,
                UsageMonthly.kind == kind,
            )
        )
    return int(total or 0)


async def test_member_stats_and_token_stats_agree_with_the_ledger_after_the_1st(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await _org_with_two_months(ctx, clock)
    member = org.member_ids[0]
    async with new_client(app) as http:
        await _admin(app, http, org, clock)
        base = f"/api/orgs/{org.org_id}"
        table = (await http.get(f"{base}/member-stats?sort=total_tokens&order=desc")).json()
        stats = (await http.get(f"{base}/token-stats")).json()
        november = (await http.get(f"{base}/token-stats?model_period=2026-11")).json()
        usage_csv = csv_of(await http.get(f"{base}/exports/users-tokens.csv"))
    top = table["members"][0]
    assert top["user_id"] == member
    assert top["inference_previous_month"] == await _rollup(ctx, member, "2026-10", "inference")
    assert top["inference_this_month"] == await _rollup(ctx, member, "2026-11", "inference") == 60
    assert top["training_this_month"] == await _rollup(ctx, member, "2026-11", "training") == 100
    assert top["total_tokens"] == 150 + 60 + 100
    assert table["total"] == 3
    months = {m["period"]: m for m in stats["months"]}
    assert months["2026-10"]["inference_tokens"] == 150
    assert months["2026-11"]["inference_tokens"] == 60 + 20
    assert months["2026-11"]["inference_requests"] == 2
    assert stats["projection"]["inference"]["projected_tokens"] > 80
    assert stats["routes"] == [
        {"route": "chat.completions", "kind": "inference", "tokens": 210, "requests": 2},
        {"route": "datasets", "kind": "training", "tokens": 100, "requests": 1},
        {"route": "messages", "kind": "inference", "tokens": 20, "requests": 1},
    ]
    for measure in ("tokens", "requests"):
        by_model = sum(m[measure] for m in stats["models"])
        assert sum(r[measure] for r in stats["routes"]) == by_model
    assert [r["route"] for r in november["routes"]] == ["datasets", "chat.completions", "messages"]
    rows = {r["user_id"]: r for r in csv.DictReader(io.StringIO(usage_csv))}
    assert rows[str(member)]["total_tokens"] == "310"
    assert await check.check(ctx) == []


async def test_the_user_table_filters_sorts_and_pages_with_a_total(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx, members=4)
    async with new_client(app) as http:
        admin = await _admin(app, http, org, clock)
        base = f"/api/orgs/{org.org_id}/member-stats"
        banned = await http.patch(
            f"/api/orgs/{org.org_id}/members/{org.member_ids[2]}",
            json={"banned": True},
            headers=admin.headers(),
        )
        assert banned.status_code == 200, banned.text
        only_banned = (await http.get(f"{base}?status=banned")).json()
        page = (await http.get(f"{base}?sort=email&order=desc&limit=2&offset=1")).json()
        members = (await http.get(f"{base}?role=member&email=MEMBER")).json()
        bad = await http.get(f"{base}?sort=shoe_size")
        too_many = await http.get(f"{base}?limit=100000")
    emails = sorted(org.admin_emails + org.member_emails, reverse=True)
    assert [m["email"] for m in page["members"]] == emails[1:3]
    assert page["total"] == 5
    assert members["total"] == 4
    assert [m["user_id"] for m in only_banned["members"]] == [org.member_ids[2]]
    assert bad.status_code == 400
    assert "sort" in bad.json()["error"]["message"]
    assert too_many.status_code == 400
    assert "between 1 and 500" in too_many.json()["error"]["message"]


async def test_exports_stream_csv_with_formulas_neutralised_and_a_named_file(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await _org_with_two_months(ctx, clock)
    sneaky = await register(
        ctx, Registration("sneaky@example.com", PASSWORD, '=HYPERLINK("http://evil")', True)
    )
    await membership.add_member(ctx, Principal.command_line(), org.org_id, "sneaky@example.com")
    async with new_client(app) as http:
        await _admin(app, http, org, clock)
        users = await http.get(f"/api/orgs/{org.org_id}/exports/users.csv")
        usage = await http.get(f"/api/orgs/{org.org_id}/exports/token-usage.csv")
        log = await http.get(
            f"/api/orgs/{org.org_id}/exports/activity.csv?from=2026-11-01&to=2026-11-02"
        )
    assert users.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="metrics-corp-users-2026-11-02.csv"' in users.headers["content-disposition"]
    people = {r["user_id"]: r for r in csv.DictReader(io.StringIO(csv_of(users)))}
    assert people[str(sneaky)]["name"] == '\'=HYPERLINK("http://evil")'
    assert list(csv.reader(io.StringIO(csv_of(usage)))) == [
        ["period", "inference_tokens", "embedding_tokens", "total_tokens"],
        ["2026-10", "150", "0", "150"],
        ["2026-11", "80", "100", "180"],
    ]
    actions = [r["action"] for r in csv.DictReader(io.StringIO(csv_of(log)))]
    assert actions.count("usage.inference") == 2  # 31 October is outside the range
    assert "usage.training" in actions
    assert "signin" in actions


async def test_an_export_is_produced_batch_by_batch(ctx: Context, clock: FixedClock) -> None:
    org = await _org_with_two_months(ctx, clock)
    export = await exports.activity_log(ctx, Principal.command_line(), org.org_id, None, None)
    chunks = [chunk async for chunk in exports.csv_chunks(export)]
    assert chunks[0].startswith("\ufeffat,action,user_id")
    assert len(chunks) >= 2
    assert sum(chunk.count("\r\n") for chunk in chunks[1:]) >= 4


async def test_the_activity_log_merges_changes_signins_and_metered_calls(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await _org_with_two_months(ctx, clock)
    async with new_client(app) as http:
        await _admin(app, http, org, clock)
        base = f"/api/orgs/{org.org_id}/activity"
        pages, cursor = [], None
        while True:
            url = f"{base}?limit=2" + (f"&cursor={cursor}" if cursor else "")
            body = (await http.get(url)).json()
            pages.append(body["entries"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        whole = (await http.get(f"{base}?limit=100")).json()["entries"]
        calls = (await http.get(f"{base}?action=usage&user_id={org.member_ids[0]}")).json()
        bad = await http.get(f"{base}?cursor=nonsense")
    paged = [entry for page in pages for entry in page]
    assert paged == whole
    assert {"org.provision", "signin", "usage.inference", "usage.training"} <= {
        e["action"] for e in whole
    }
    assert [e["action"] for e in calls["entries"]] == [
        "usage.training",
        "usage.inference",
        "usage.inference",
    ]
    assert calls["entries"][1]["details"]["model"] == CHAT
    assert "prompt" not in calls["entries"][1]["details"]
    assert bad.status_code == 400


async def test_a_member_sees_their_caps_usage_and_reset(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await _org_with_two_months(ctx, clock)
    async with new_client(app) as http:
        await sign_in(http, org.member_emails[0])
        mine = (await http.get("/api/me/usage")).json()
    assert mine["current_month"] == "2026-11"
    assert mine["inference"] == {"cap": 1_000_000, "used": 60, "reserved": 0, "left": 999_940}
    assert mine["training"]["used"] == 100
    assert mine["resets_at"] == "2026-12-01T00:00:00+00:00"
    assert [m["period"] for m in mine["months"]] == ["2026-11", "2026-10"]
    assert mine["lifetime_tokens"] == 310


async def test_the_log_has_the_members_keys_mfa_and_card_changes_with_their_names(
    app: FastAPI, ctx: Context, clock: FixedClock
) -> None:
    org = await add_org(ctx)
    member_id, email = org.member_ids[0], org.member_emails[0]
    operator_id = await register(
        ctx, Registration("ops@example.com", PASSWORD, "Olivia", True, True)
    )
    operator = Principal(operator_id, True, True, "session")
    async with new_client(app) as http:
        member = await enrol_mfa(await sign_in(http, email), clock)
        assert (await member.post("/api/me/api-keys", json={"name": "laptop"})).status_code == 201
    await mfa.operator_reset(ctx, operator, member_id)
    await cac.unlink(ctx, operator, member_id)
    async with new_client(app) as http:
        await _admin(app, http, org, clock)
        base = f"/api/orgs/{org.org_id}/activity"
        keys = (await http.get(f"{base}?action=api_key")).json()
        resets = (await http.get(f"{base}?action=mfa&user_id={member_id}")).json()
        cards = (await http.get(f"{base}?action=cac")).json()
        page = (await http.get(f"/org/activity?org={org.org_id}&action=mfa")).text
    assert [e["action"] for e in keys["entries"]] == ["api_key.create"]
    assert keys["entries"][0]["user_id"] == member_id
    assert [e["action"] for e in resets["entries"]] == ["mfa.reset", "mfa.enable"]
    assert resets["people"][str(operator_id)] == {"email": "ops@example.com", "name": "Olivia"}
    assert resets["people"][str(member_id)]["email"] == email
    assert [e["action"] for e in cards["entries"]] == ["cac.unlink"]
    assert "Olivia (ops@example.com)" in page
    assert "Two-factor authentication on → off" in page
