"""usage routes and details: each hold, usage event and roll-up records the route its call came
by; each event the cached and reasoning parts of its tokens

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Inference rows take /v1/chat/completions, the one chat route released before this revision,
from the column's default (no rewrite on PostgreSQL). A training call's route is read from its
request id: `embd-` came from /v1/embeddings, `query-` embedded a dataset search, anything else
ingested a document. The roll-up's key gains the route; training roll-ups are rebuilt from their
events (a few per member and month). The fold is dropped, as `fold.forget` does, and the next
fold (within five minutes of `qm serve` starting) writes it again by route.

On PostgreSQL the new columns cost no rewrite; what takes time is rewriting the training events
(each is a new row version), checking the two new columns and re-keying the roll-ups, with the
tables locked meanwhile: 15 s for 2 M events of which 200,000 training (10 s of it the training
events) on a busy 2-CPU machine.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CHAT = "chat.completions"
KEYS = ("org_id", "user_id", "period", "kind", "model_id")
"""The roll-up's key before this revision; the route is added after it."""

holds = sa.table("holds", *(sa.column(name) for name in ("request_id", "kind", "route")))
events = sa.table(
    "usage_events",
    *(sa.column(name) for name in (*KEYS, "route", "tokens", "request_id")),
)
monthly = sa.table(
    "usage_monthly",
    *(sa.column(name) for name in (*KEYS, "route", "tokens", "requests", "rollup_key")),
)
folds = sa.table(
    "usage_folds", sa.column("through_period", sa.String()), sa.column("folded_at", sa.DateTime())
)


def _training_route(request_id: Any) -> Any:
    return sa.case(
        (request_id.like("embd-%"), "embeddings"),
        (request_id.like("query-%"), "search"),
        else_="datasets",
    )


def _old_key(table: Any) -> Any:
    """`org:user:period:kind:model`, as services/ledger/rows.py wrote it (`-` for no org)."""
    key: Any = sa.func.coalesce(sa.cast(table.c.org_id, sa.String), "-")
    for name in KEYS[1:]:
        key = key + ":" + sa.cast(table.c[name], sa.String)
    return key


def _refold(with_route: bool) -> None:
    """The folded orgs' table by the new key, empty, and no fold until the next one."""
    op.drop_table("usage_folded_orgs")
    route = [sa.Column("route", sa.String(length=32), nullable=False)] if with_route else []
    op.create_table(
        "usage_folded_orgs",
        sa.Column("org_id", BIG_ID, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_id", BIG_ID, nullable=False),
        *route,
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_usage_folded_orgs_model_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_usage_folded_orgs_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint(
            "org_id",
            "period",
            "kind",
            "model_id",
            *(["route"] if with_route else []),
            name=op.f("pk_usage_folded_orgs"),
        ),
    )
    op.execute(sa.text("DELETE FROM usage_folded_users"))
    op.execute(folds.update().values(through_period=None, folded_at=None))


def _route_column() -> sa.Column[str]:
    return sa.Column("route", sa.String(length=32), server_default=CHAT, nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(_route_column())
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        batch_op.add_column(_route_column())
        for name in ("cached_tokens", "reasoning_tokens"):
            batch_op.add_column(
                sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
            )
            batch_op.create_check_constraint(
                op.f(f"ck_usage_events_{name}_nonnegative"), sa.text(f"{name} >= 0")
            )
    with op.batch_alter_table("usage_monthly", schema=None) as batch_op:
        batch_op.add_column(_route_column())
    training = holds.c.kind == "training"
    op.execute(holds.update().where(training).values(route=_training_route(holds.c.request_id)))
    op.execute(
        events.update()
        .where(events.c.kind == "training")
        .values(route=_training_route(events.c.request_id))
    )
    op.execute(
        monthly.update()
        .where(monthly.c.kind == "inference")
        .values(rollup_key=monthly.c.rollup_key + ":" + monthly.c.route)
    )
    op.execute(monthly.delete().where(monthly.c.kind == "training"))
    group = [*(events.c[name] for name in KEYS), events.c.route]
    rebuilt = (
        sa.select(
            *group,
            sa.func.sum(events.c.tokens),
            sa.func.count(),
            _old_key(events) + ":" + events.c.route,
        )
        .where(events.c.kind == "training")
        .group_by(*group)
    )
    fields = [*KEYS, "route", "tokens", "requests", "rollup_key"]
    op.execute(monthly.insert().from_select(fields, rebuilt))
    _refold(with_route=True)


def downgrade() -> None:
    _refold(with_route=False)
    group = [monthly.c[name] for name in KEYS]
    merged = sa.select(
        *group,
        sa.literal(""),
        sa.func.sum(monthly.c.tokens),
        sa.func.sum(monthly.c.requests),
        _old_key(monthly),
    ).group_by(*group)
    op.execute(
        monthly.insert().from_select([*KEYS, "route", "tokens", "requests", "rollup_key"], merged)
    )
    op.execute(monthly.delete().where(monthly.c.route != ""))
    with op.batch_alter_table("usage_monthly", schema=None) as batch_op:
        batch_op.drop_column("route")
    with op.batch_alter_table("usage_events", schema=None) as batch_op:
        for name in ("reasoning_tokens", "cached_tokens"):
            batch_op.drop_constraint(op.f(f"ck_usage_events_{name}_nonnegative"), type_="check")
            batch_op.drop_column(name)
        batch_op.drop_column("route")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_column("route")
