"""pool applications: the other two of 三(五)'s 三个优先 (growth stage, demonstrative project)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pool_application") as batch:
        batch.add_column(sa.Column("growth_stage", sa.String(length=8), nullable=False, server_default="无"))
        batch.add_column(sa.Column("demonstrative", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("pool_application") as batch:
        batch.drop_column("demonstrative")
        batch.drop_column("growth_stage")
