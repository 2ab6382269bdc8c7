"""The initial state store: accounts, leases, cursors, the deal mirror, the action ledger, audit and runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("crm", sa.String(20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("blocked_fingerprint", sa.String(64), nullable=True),
        sa.Column("blocked_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "leases",
        sa.Column("account", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("account", sa.String(100), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_full_pull_at", UtcDateTime(), nullable=True),
        sa.Column("full_pull_run", sa.String(40), nullable=True),
    )
    op.create_table(
        "mirror_deals",
        sa.Column("account", sa.String(100), primary_key=True),
        sa.Column("deal_id", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("modified_at", UtcDateTime(), nullable=False),
        sa.Column("seen_run", sa.String(40), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_index("ix_mirror_deals_owner", "mirror_deals", ["account", "owner_id", "deal_id"])
    op.create_table(
        "ledger",
        sa.Column("account", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("crm_ids", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_ledger_status", "ledger", ["account", "status"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("action_keys", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("explanation", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_deal", "audit", ["account", "deal_id"])
    op.create_index("ix_audit_run", "audit", ["run_id"])
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("api_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_runs_account", "runs", ["account", "started_at"])


def downgrade() -> None:
    for table in ("runs", "audit", "ledger", "mirror_deals", "cursors", "leases", "accounts"):
        op.drop_table(table)
