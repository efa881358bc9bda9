"""One big enterprise on PostgreSQL for the metrics benchmark: 10,000 members, 10 million usage
events over twelve months, their roll-ups and counters, sign-ins and a hash-chained audit log.

Usage: .venv/bin/python bench/metrics_data.py [--members 10000] [--events 10000000]
       [--budget-s 600] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Rows are made server-side with generate_series in chunks, with the usage_events indexes dropped
during the load and rebuilt after it (as a bulk load would), until `--events` are in or the time
`--budget-s` is spent; the JSON line printed at the end says how many were made. Roll-ups and
counters are computed from the events, so `qm ledger check` passes on the result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from quartermaster import bootstrap
from quartermaster.domain.periods import period_of, period_start, shift_period
from quartermaster.services.audit import trail
from quartermaster.services.catalog import entries
from quartermaster.settings import Settings
from quartermaster.store import migrate
from quartermaster.store.models import AuditEvent

BENCH_DB = "qm_metrics_bench"
ORG_NAME = "Bench Corp"
MONTHS = 12
CHUNK = 500_000


def bench_url(dsn: str) -> str:
    base = dsn.rsplit("/", 1)[0]
    return f"{base}/{BENCH_DB}"


async def _create_database(dsn: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await admin.close()


async def _seed(url: str) -> None:
    async with bootstrap.opened(Settings(database_url=url)) as ctx:
        await entries.seed(ctx, entries.default_specs())


def recreate(dsn: str) -> None:
    """A fresh, migrated bench database with the seeded catalog (before any event loop runs)."""
    asyncio.run(_create_database(dsn))
    url = bench_url(dsn).replace("postgresql://", "postgresql+asyncpg://", 1)
    migrate.upgrade(url)
    asyncio.run(_seed(url))


async def org_and_members(db: asyncpg.Connection, members: int, now: datetime) -> int:
    first = period_start(shift_period(period_of(now), -(MONTHS - 1))).date()
    org_id: int = await db.fetchval(
        "INSERT INTO organizations (name, billing_address, timezone, min_inference_allocation,"
        " prompt_logging, auto_approve_enabled, auto_approve_max_tokens,"
        " auto_approve_max_pool_pct, created_at)"
        " VALUES ($1, '1 Bench Street', 'UTC', 200000, false, false, 0, 0, $2) RETURNING id",
        ORG_NAME,
        now - timedelta(days=400),
    )
    inference = -(-members * 400_000 // 2_000_000) * 2_000_000
    training = -(-members * 100_000 // 1_000_000) * 1_000_000
    await db.execute(
        "INSERT INTO purchases (org_id, kind, term, inference_tokens, training_tokens, starts_on,"
        " ends_on, price, currency, created_at) VALUES ($1, 'subscription', 'yearly', $2, $3, $4,"
        " $5, 990.00, 'USD', $6)",
        org_id, inference, training, first, first.replace(year=first.year + 2), now,
    )  # fmt: skip
    await db.execute(
        "INSERT INTO users (email, email_normalized, name, is_operator, terms_version,"
        " terms_accepted_at, mfa_enabled_at, cac_subject_dn, failed_logins, created_at)"
        " SELECT 'Member' || g || '@bench.example', 'member' || g || '@bench.example',"
        " 'Member ' || g, false, '1', $1::timestamptz,"
        " CASE WHEN g % 3 = 0 THEN $1::timestamptz END,"
        " CASE WHEN g % 10 = 0 THEN 'CN=member' || g END, 0, $1::timestamptz"
        " FROM generate_series(1, $2) g",
        now - timedelta(days=400),
        members,
    )
    await db.execute(
        "INSERT INTO memberships (org_id, user_id, role, paid, banned, joined_at, active_user_id)"
        " SELECT $1, id, CASE WHEN id % 2000 = 1 THEN 'admin' ELSE 'member' END,"
        " id % 50 <> 0, id % 97 = 0, created_at, id FROM users",
        org_id,
    )
    await db.execute(
        "INSERT INTO allocations (membership_id, org_id, max_inference_tokens,"
        " max_training_tokens, version, updated_at)"
        " SELECT id, org_id, 200000 + (id % 5) * 50000, 100000, 1, joined_at FROM memberships",
    )
    return org_id


async def drop_event_indexes(db: asyncpg.Connection) -> list[str]:
    """Drop usage_events' secondary indexes and unique constraint; return the DDL to rebuild."""
    rebuild = []
    for name, definition in await db.fetch(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'usage_events'::regclass AND contype IN ('u', 'f')"
    ):
        await db.execute(f"ALTER TABLE usage_events DROP CONSTRAINT {name}")
        rebuild.append(f"ALTER TABLE usage_events ADD CONSTRAINT {name} {definition}")
    for name, definition in await db.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_events'"
        " AND indexname NOT LIKE 'pk_%'"
    ):
        await db.execute(f"DROP INDEX {name}")
        rebuild.append(definition)
    return rebuild


EVENTS_SQL = """
INSERT INTO usage_events (request_id, user_id, org_id, model_id, period, kind, route,
    prompt_tokens, completion_tokens, tokens, input_rate, output_rate, held, overrun, status,
    created_at)
SELECT 'bench-' || g, u.first_id + (g * 7919) % $3, $4, m.id,
       to_char(t.at AT TIME ZONE 'UTC', 'YYYY-MM'), m.kind, m.route, p.prompt, p.completion,
       ceil(p.prompt * m.input_rate + p.completion * m.output_rate), m.input_rate, m.output_rate,
       0, 0, 'ok', t.at
FROM generate_series($1::bigint, $2::bigint) g
CROSS JOIN (SELECT min(id) AS first_id FROM users) u
CROSS JOIN LATERAL (SELECT $5::timestamptz + (g::float8 / $6) * ($7::timestamptz - $5) AS at) t
CROSS JOIN LATERAL (SELECT 50 + (g * 31) % 450 AS prompt,
                           CASE WHEN g % 10 = 0 THEN 0 ELSE 20 + (g * 17) % 280 END AS completion,
                           1 + (g / 10) % cardinality($8::bigint[]) AS pick) p
CROSS JOIN LATERAL (
    SELECT CASE WHEN g % 10 = 0 THEN $11::bigint ELSE ($8::bigint[])[p.pick] END AS id,
           CASE WHEN g % 10 = 0 THEN 'training' ELSE 'inference' END AS kind,
           CASE WHEN g % 10 = 0 THEN 'datasets'
                ELSE (ARRAY['chat.completions', 'responses', 'messages'])[1 + (g / 3) % 3]
           END AS route,
           CASE WHEN g % 10 = 0 THEN $12::numeric ELSE ($9::numeric[])[p.pick] END AS input_rate,
           CASE WHEN g % 10 = 0 THEN 0 ELSE ($10::numeric[])[p.pick] END AS output_rate
) m
"""


async def catalog_models(db: asyncpg.Connection) -> tuple[Any, ...]:
    """Three chat models (ids, input and output rates) and one embedding model with its rate."""
    chat = await db.fetch(
        "SELECT id, input_rate, output_rate FROM models WHERE kind = 'chat' ORDER BY id LIMIT 3"
    )
    embedding = await db.fetchrow(
        "SELECT id, training_rate FROM models WHERE kind = 'embedding' ORDER BY id LIMIT 1"
    )
    assert chat, "the seeded catalog has chat models"
    assert embedding, "the seeded catalog has an embedding model"
    ids, inputs, outputs = (list(column) for column in zip(*chat, strict=True))
    return ids, inputs, outputs, embedding["id"], embedding["training_rate"]


async def events(
    db: asyncpg.Connection, org_id: int, members: int, wanted: int, deadline: float, now: datetime
) -> int:
    """Insert events in chunks until `wanted` are in or `deadline` passes; return how many."""
    start = period_start(shift_period(period_of(now), -(MONTHS - 1)))
    models = await catalog_models(db)
    await db.execute("SET session_replication_role = replica")  # skip FK triggers for the load
    made = 0
    while made < wanted and time.monotonic() < deadline:
        upto = min(wanted, made + CHUNK)
        await db.execute(EVENTS_SQL, made + 1, upto, members, org_id, start, wanted, now, *models)
        made = upto
        print(json.dumps({"events": made}), flush=True)
    await db.execute("SET session_replication_role = DEFAULT")
    return made


async def rollups(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO usage_monthly (org_id, user_id, period, kind, model_id, route, tokens,"
        " requests, rollup_key) SELECT org_id, user_id, period, kind, model_id, route,"
        " sum(tokens), count(*), org_id || ':' || user_id || ':' || period || ':' || kind"
        " || ':' || model_id || ':' || route"
        " FROM usage_events GROUP BY org_id, user_id, period, kind, model_id, route"
    )
    await db.execute(
        "INSERT INTO usage_counters (user_id, period, kind, used, reserved)"
        " SELECT user_id, period, kind, sum(tokens), 0 FROM usage_events"
        " GROUP BY user_id, period, kind"
    )


async def sign_ins(db: asyncpg.Connection, count: int, now: datetime) -> None:
    await db.execute(
        "INSERT INTO login_attempts (user_id, email, ip, user_agent, method, mfa_used, success,"
        " reason, created_at) SELECT u.id, u.email, '10.0.' || (g % 250) || '.1', 'bench',"
        " 'password', false, g % 20 <> 0, CASE WHEN g % 20 = 0 THEN 'bad_password' END,"
        " $2::timestamptz - (g || ' minutes')::interval"
        " FROM generate_series(1, $1) g JOIN users u ON u.id = (SELECT min(id) FROM users)"
        " + (g * 13) % (SELECT count(*) FROM users)",
        count,
        now,
    )


async def audit_log(db: asyncpg.Connection, org_id: int, count: int, now: datetime) -> None:
    """`count` admin changes, chained exactly as `services.audit.record` chains them."""
    last = await db.fetchval("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
    prev, rows = last or trail.GENESIS_HASH, []
    admin = await db.fetchval("SELECT user_id FROM memberships WHERE role = 'admin' LIMIT 1")
    for n in range(count):
        event = AuditEvent(
            org_id=org_id,
            actor_user_id=admin,
            action="allocation.update",
            target_type="user",
            target_id=str(admin + n % 100),
            before={"max_inference_tokens": 200_000},
            after={"max_inference_tokens": 250_000},
            ip="10.0.0.1",
            created_at=now - timedelta(minutes=count - n),
            prev_hash=prev,
        )
        prev = trail.event_hash(prev, trail.hashed_fields(event))
        rows.append((org_id, admin, event.action, "user", event.target_id, event.before,
                     event.after, "10.0.0.1", event.created_at, event.prev_hash, prev))  # fmt: skip
    await db.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await db.executemany(
        "INSERT INTO audit_events (org_id, actor_user_id, action, target_type, target_id, before,"
        " after, ip, created_at, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
        rows,
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.budget_s
    now = datetime.now(UTC)
    db = await asyncpg.connect(bench_url(args.postgres))
    try:
        org_id = await org_and_members(db, args.members, now)
        rebuild = await drop_event_indexes(db)
        made = await events(db, org_id, args.members, args.events, deadline, now)
        loaded = time.monotonic()
        for statement in rebuild:
            await db.execute(statement)
        await rollups(db)
        await sign_ins(db, 50_000, now)
        await audit_log(db, org_id, 5_000, now)
        await db.execute("ANALYZE")
    finally:
        await db.close()
    return {
        "database": BENCH_DB,
        "org_id": org_id,
        "members": args.members,
        "events": made,
        "events_wanted": args.events,
        "load_s": round(loaded - started, 1),
        "total_s": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    arguments = parser.parse_args()
    recreate(arguments.postgres)
    print(json.dumps(asyncio.run(main(arguments))))
