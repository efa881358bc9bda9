"""what archived months' usage events added up to (`qm usage archive`)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_archived",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("org_id", BIG_ID, nullable=True),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_id", BIG_ID, nullable=False),
        sa.Column("route", sa.String(length=32), server_default="chat.completions", nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_usage_archived_model_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_usage_archived_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_usage_archived_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_archived")),
    )
    op.create_index("ix_usage_archived_period", "usage_archived", ["period"])


def downgrade() -> None:
    op.drop_index("ix_usage_archived_period", table_name="usage_archived")
    op.drop_table("usage_archived")
