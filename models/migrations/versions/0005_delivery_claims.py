"""outbox claims, dead and revived times; endpoint pacing shared by deliverers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 02:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revived_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_due", ["status", "channel_kind", "next_attempt_at"])
    op.create_table(
        "endpoint_pace",
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("free_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint"),
    )


def downgrade() -> None:
    op.drop_table("endpoint_pace")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_due")
        batch.drop_column("revived_at")
        batch.drop_column("dead_at")
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
