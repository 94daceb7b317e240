"""The pool and the bases outlive the year: a project is one row across campaigns; a base is named by
its own unit's naming list (or imported from an earlier year's list), not only ranked from scores

- pool_application: identity is credit code + project name in every year (the row's `year` is the
  campaign year it first applied in), so a project admitted in 2021 is the same pool project in 2022;
- base: a base filed in a naming list has no scores of the province's (expert_score, priority, total,
  rank may be empty); it keeps its naming document's number, where it came from, the reason a
  qualifying base was not recommended upward, and the file it came in.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite reflects the unnamed unique constraint without a name: this names it for the batch rebuild.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "pool_application_year_credit_code_project_name_key"
    return "uq_pool_application_year"


def upgrade() -> None:
    old = _old_unique_name()
    with op.batch_alter_table("pool_application", naming_convention=NAMING) as batch:
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint("uq_pool_project", ["credit_code", "project_name"])
    with op.batch_alter_table("base") as batch:
        for column, kind in (
            ("expert_score", sa.Float()),
            ("priority", sa.Float()),
            ("total", sa.Float()),
            ("rank", sa.Integer()),
        ):
            batch.alter_column(column, existing_type=kind, nullable=True)
        batch.add_column(sa.Column("decree_no", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="review"))
        batch.add_column(sa.Column("kept_reason", sa.String(), nullable=False, server_default=""))
        batch.add_column(sa.Column("source_file_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_base_source_file", "intake_file", ["source_file_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("base") as batch:
        batch.drop_constraint("fk_base_source_file", type_="foreignkey")
        for column in ("source_file_id", "kept_reason", "source", "decree_no"):
            batch.drop_column(column)
    with op.batch_alter_table("pool_application") as batch:
        batch.drop_constraint("uq_pool_project", type_="unique")
        batch.create_unique_constraint(_old_unique_name(), ["year", "credit_code", "project_name"])
