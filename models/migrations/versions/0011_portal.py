"""unit_link, upload, intake_request, intake_file.errors: the bureaus' pages

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_key", sa.String(length=16), sa.ForeignKey("unit.key"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(), nullable=True),
        sa.UniqueConstraint("unit_key", "year", "version"),
    )
    op.create_table(
        "upload",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("unit_key", sa.String(length=16), sa.ForeignKey("unit.key"), nullable=False),
        sa.Column("obligation_key", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(), nullable=False),
        sa.Column("stored_name", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("unit_key", "folder", "sha256"),
    )
    op.create_index("ix_upload_unit_key", "upload", ["unit_key"])
    op.create_table(
        "intake_request",
        sa.Column("flow", sa.String(length=64), primary_key=True),
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("intake_file") as batch:
        batch.add_column(sa.Column("errors", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("intake_file") as batch:
        batch.drop_column("errors")
    op.drop_table("intake_request")
    op.drop_index("ix_upload_unit_key", "upload")
    op.drop_table("upload")
    op.drop_table("unit_link")
