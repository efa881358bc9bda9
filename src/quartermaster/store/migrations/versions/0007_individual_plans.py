"""individual plans, subscriptions, refills and plan payments

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("monthly_inference_tokens", sa.BigInteger(), nullable=False),
        sa.Column("monthly_training_tokens", sa.BigInteger(), nullable=False),
        sa.Column(
            "price_monthly", sa.Numeric(14, 2).with_variant(sa.String(64), "sqlite"), nullable=False
        ),
        sa.Column(
            "price_yearly", sa.Numeric(14, 2).with_variant(sa.String(64), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("models_allowed", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "monthly_inference_tokens >= 0", name=op.f("ck_plans_inference_nonnegative")
        ),
        sa.CheckConstraint(
            "monthly_training_tokens >= 0", name=op.f("ck_plans_training_nonnegative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    op.create_table(
        "plan_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period_from", sa.String(length=7), nullable=False),
        sa.Column("period_to", sa.String(length=7), nullable=False),
        sa.Column(
            "amount", sa.Numeric(14, 2).with_variant(sa.String(64), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_plan_payments_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_plan_payments_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_plan_payments_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_payments")),
        sa.UniqueConstraint("reference", name=op.f("uq_plan_payments_reference")),
    )
    with op.batch_alter_table("plan_payments", schema=None) as batch_op:
        batch_op.create_index("ix_plan_payments_user", ["user_id", "period_from"], unique=False)

    op.create_table(
        "refills",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(14, 2).with_variant(sa.String(64), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_reference", sa.String(length=100), nullable=False),
        sa.Column(
            "created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("tokens > 0", name=op.f("ck_refills_tokens_positive")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_refills_created_by_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_refills_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refills")),
    )
    with op.batch_alter_table("refills", schema=None) as batch_op:
        batch_op.create_index("ix_refills_user_period", ["user_id", "period"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("term", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_subscriptions_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_subscriptions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("subscriptions")
    with op.batch_alter_table("refills", schema=None) as batch_op:
        batch_op.drop_index("ix_refills_user_period")

    op.drop_table("refills")
    with op.batch_alter_table("plan_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_payments_user")

    op.drop_table("plan_payments")
    op.drop_table("plans")
