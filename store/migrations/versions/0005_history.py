"""The backtest's history store: deals with their field histories, and where the last history pull ended.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.schema import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history_deals",
        sa.Column("account", sa.String(100), primary_key=True),
        sa.Column("deal_id", sa.String(64), primary_key=True),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("modified_at", UtcDateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
    )
    op.create_table(
        "history_pulls",
        sa.Column("account", sa.String(100), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("covers_since", UtcDateTime(), nullable=False),
        sa.Column("history_since", UtcDateTime(), nullable=True),
        sa.Column("untracked", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("history_pulls")
    op.drop_table("history_deals")
