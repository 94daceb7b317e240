"""inbox_fault, told_at, unknown_outcomes: the system's faults kept apart from the sender's

A file the system failed on (database, disk, a bug) stays in its inbox and is recorded here, instead of
being refused and its sender blamed; refusals are told once per sender and run (told_at); a send whose
outcome is unknown is counted and capped (unknown_outcomes).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_fault",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("folder", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("unit_key", sa.String(length=16), nullable=True),
        sa.Column("faults", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quarantined_at", sa.String(), nullable=False),
        sa.UniqueConstraint("folder", "file_name", "sha256"),
    )
    with op.batch_alter_table("intake_rejection") as batch:
        batch.add_column(sa.Column("told_at", sa.DateTime(timezone=True), nullable=True))
    # Refusals recorded before this revision were told one by one already.
    op.execute("UPDATE intake_rejection SET told_at = received_at")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("unknown_outcomes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("unknown_outcomes")
    with op.batch_alter_table("intake_rejection") as batch:
        batch.drop_column("told_at")
    op.drop_table("inbox_fault")
