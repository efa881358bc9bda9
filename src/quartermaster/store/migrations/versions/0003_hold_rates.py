"""Holds keep the rates they were quoted at, so settlement charges what reserve promised

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATE = sa.Numeric(20, 10).with_variant(sa.String(64), "sqlite")


def upgrade() -> None:
    # No hold was ever written before this revision, but recreate the table on SQLite anyway:
    # SQLite cannot add a NOT NULL column without a default in place.
    with op.batch_alter_table("holds", schema=None, recreate="always") as batch_op:
        batch_op.add_column(sa.Column("input_rate", RATE, nullable=False))
        batch_op.add_column(sa.Column("output_rate", RATE, nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_column("output_rate")
        batch_op.drop_column("input_rate")
