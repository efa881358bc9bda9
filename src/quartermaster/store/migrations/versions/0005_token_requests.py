"""Token requests: members ask for more tokens; admins or the org's rule decide

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "token_requests",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("org_id", BIG_ID, nullable=False),
        sa.Column("membership_id", BIG_ID, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approved_amount", sa.BigInteger(), nullable=True),
        sa.Column("auto_approved", sa.Boolean(), nullable=False),
        sa.Column("decided_by", BIG_ID, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('inference', 'training')", name=op.f("ck_token_requests_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied')",
            name=op.f("ck_token_requests_status_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_token_requests_amount_positive")),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_token_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_token_requests_membership_id_memberships"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_token_requests_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_token_requests_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_requests")),
    )
    with op.batch_alter_table("token_requests", schema=None) as batch_op:
        batch_op.create_index("ix_token_requests_org_status", ["org_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_token_requests_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("token_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_requests_user_id"))
        batch_op.drop_index("ix_token_requests_org_status")

    op.drop_table("token_requests")
