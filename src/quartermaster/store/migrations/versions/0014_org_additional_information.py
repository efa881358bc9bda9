"""an organization's additional information, given when it is provisioned

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column("additional_information", sa.Text(), nullable=False, server_default=""),
    )


def downgrade() -> None:
    # Not in batch mode: on SQLite that copies the table, and dropping `organizations` while
    # members, purchases and holds point at it breaks their foreign keys. SQLite 3.35 and newer
    # drop a column in place.
    op.drop_column("organizations", "additional_information")
