"""Closed months folded into per-user and per-org summaries; a partial index on late events

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24

Building the partial index reads usage_events once and holds off its inserts meanwhile (about
1 s per 10 M events on a 2-CPU machine); it stays tiny, since only late events enter it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LATE = sa.text("status = 'late'")


def upgrade() -> None:
    fold = op.create_table(
        "usage_folds",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("through_period", sa.String(length=7), nullable=True),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_folds")),
    )
    op.bulk_insert(fold, [{"id": 1, "through_period": None, "folded_at": None}])
    op.create_table(
        "usage_folded_users",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_usage_folded_users_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_usage_folded_users")),
    )
    op.create_table(
        "usage_folded_orgs",
        sa.Column("org_id", BIG_ID, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_id", BIG_ID, nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_usage_folded_orgs_model_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_usage_folded_orgs_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "period", "kind", "model_id", name=op.f("pk_usage_folded_orgs")
        ),
    )
    op.create_index(
        "ix_usage_events_late",
        "usage_events",
        ["org_id", "period"],
        postgresql_where=LATE,
        sqlite_where=LATE,
    )


def downgrade() -> None:
    op.drop_index("ix_usage_events_late", table_name="usage_events")
    op.drop_table("usage_folded_orgs")
    op.drop_table("usage_folded_users")
    op.drop_table("usage_folds")
