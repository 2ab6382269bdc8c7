"""The fleet: each account's next due time, each run's due time, and the workers sharing the store.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as accounts:
        accounts.add_column(sa.Column("next_due_at", UtcDateTime(), nullable=True))
        accounts.create_index("ix_accounts_next_due", ["next_due_at"])
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("due_at", UtcDateTime(), nullable=True))
    op.create_table(
        "workers",
        sa.Column("holder", sa.String(200), primary_key=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.Column("max_cycles", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("due_at")
    with op.batch_alter_table("accounts") as accounts:
        accounts.drop_index("ix_accounts_next_due")
        accounts.drop_column("next_due_at")
