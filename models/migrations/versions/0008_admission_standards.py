"""admission_standard: each unit's filed 入库标准表 (三(二)、四(二))

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admission_standard",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.Integer(), nullable=False, index=True),
        sa.Column("unit_key", sa.String(length=16), sa.ForeignKey("unit.key"), nullable=False),
        sa.Column("min_years_operating", sa.Float(), nullable=False),
        sa.Column("min_premises_m2", sa.Float(), nullable=False),
        sa.Column("min_planted_mu", sa.Float(), nullable=False),
        sa.Column("min_entrepreneurs_driven", sa.Integer(), nullable=False),
        sa.Column("min_jobs", sa.Integer(), nullable=False),
        sa.Column("min_avg_wage_yuan", sa.Float(), nullable=False),
        sa.Column("source_file_id", sa.Integer(), sa.ForeignKey("intake_file.id"), nullable=True),
        sa.Column("source_row", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=20), nullable=False),
        sa.Column("submitted_by", sa.String(length=16), sa.ForeignKey("unit.key"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("year", "unit_key"),
    )


def downgrade() -> None:
    op.drop_table("admission_standard")
