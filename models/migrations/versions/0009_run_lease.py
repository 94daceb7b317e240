"""run_lease: one run at a time per flow and year, held only while the run works

Prefect's deployment concurrency limit held a lease that a paused run stopped renewing, so an approval
left unanswered for four minutes crashed its run. The campaign's own lease is released for the pause.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_lease",
        sa.Column("name", sa.String(length=128), primary_key=True),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_lease")
