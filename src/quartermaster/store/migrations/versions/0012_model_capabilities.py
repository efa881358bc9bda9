"""model capabilities: tools, vision, audio input, log probabilities, choices, image cost, margin

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("tools", "vision", "audio_input", "logprobs")
COUNTS = {"max_choices": "1", "image_tokens": "0", "prompt_margin_pct": "0"}
OPENAI_CHAT = ("gpt-4o-mini",)
"""The built-in OpenAI chat models (data/models.toml), which can do all of it."""


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        for flag in FLAGS:
            batch_op.add_column(
                sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
            )
        for name, default in COUNTS.items():
            batch_op.add_column(
                sa.Column(name, sa.Integer(), nullable=False, server_default=default)
            )
    models = sa.table(
        "models",
        sa.column("name", sa.String()),
        sa.column("provider", sa.String()),
        *(sa.column(flag, sa.Boolean()) for flag in FLAGS),
        sa.column("max_choices", sa.Integer()),
        sa.column("image_tokens", sa.Integer()),
    )
    op.execute(
        models.update()
        .where(models.c.name.in_(OPENAI_CHAT), models.c.provider == "openai")
        .values(
            tools=True,
            vision=True,
            logprobs=True,
            max_choices=128,
            image_tokens=48_169,
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        for name in (*reversed(COUNTS), *reversed(FLAGS)):
            batch_op.drop_column(name)
