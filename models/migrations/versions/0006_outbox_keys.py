"""outbox keys in the one format of `models.outbox.outbox_key`: kind, year, identity

Before, the key of a decided message was written by hand in twelve formats. A stored key is what
stops a decision made again (an escalation is decided every day while its step is in force) from
going out twice, so the stored keys are rewritten to what the code now builds for the same message.
Keys that were too long and stored as their hash cannot be rewritten; they belong to one-off
messages (a file's receipt or refusal) that are never decided again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 05:00:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLANNED = {"kickoff", "reminder", "overdue", "escalation"}


def current_key(kind: str, old: str, created_year: int) -> str:
    """The key `outbox_key` builds for the message stored under `old` (frozen here: this is history)."""
    if old.startswith(("sha256:", f"{kind}:{created_year}:")):
        return old
    t = old.split(":")
    if kind in PLANNED and t[0].isdigit():  # year:obligation:period:unit:kind:step[:projects]:channel:address
        new = ":".join([kind, t[0], t[1], t[2], t[3], *t[5:]])
    elif t[0] == "approval_due":  # approval_due[:review]:date:step:…
        flow, rest = ("review", t[2:]) if t[1] == "review" else ("pool", t[1:])
        new = ":".join([kind, rest[0][:4], flow, *rest])
    elif t[0] == "review":  # review:year:unit:(incomplete|named|to):…
        new = ":".join([kind, *t[1:]])
    elif t[0] in ("exchange", "scorecard"):  # already kind:year:…
        return old
    elif t[0] == "dead_digest":  # dead_digest:date:…
        new = ":".join([kind, t[1][:4], *t[1:]])
    else:  # recommendation, intake_result, flag, receipt, rejection: kind:…, no year
        new = ":".join([kind, str(created_year), *t[1:]])
    return new if len(new) <= 255 else "sha256:" + hashlib.sha256(new.encode("utf-8")).hexdigest()


def upgrade() -> None:
    conn = op.get_bind()
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("dedupe_key", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.kind, outbox.c.dedupe_key, outbox.c.created_at)).all()
    changed = [
        {"row_id": row.id, "key": current_key(row.kind, row.dedupe_key, row.created_at.year)}
        for row in rows
        if current_key(row.kind, row.dedupe_key, row.created_at.year) != row.dedupe_key
    ]
    if changed:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(dedupe_key=sa.bindparam("key")),
            changed,
        )


def downgrade() -> None:
    raise NotImplementedError("the old key formats are not rebuilt: restore the database backup instead")
