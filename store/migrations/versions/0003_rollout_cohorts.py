"""Each decision's rollout cohort on the ledger and the audit trail (canary enforcement).

``cohort`` is ``all`` (no rollout: the account's mode for every deal), ``owner``, ``team``, ``pipeline`` or
``percent`` (enforced by the rollout, by the first criterion that matched) or ``outside`` (held in shadow by
the rollout); NULL on rows written before this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger") as ledger:
        ledger.add_column(sa.Column("cohort", sa.String(20), nullable=True))
    with op.batch_alter_table("audit") as audit:
        audit.add_column(sa.Column("cohort", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as audit:
        audit.drop_column("cohort")
    with op.batch_alter_table("ledger") as ledger:
        ledger.drop_column("cohort")
