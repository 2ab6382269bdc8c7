"""The state store of crm-followup's first release, in one step (a squash of the pre-release 0001-0005).

Frozen: this file says what the schema was at the first release, and later migrations apply on top of it,
so it states its tables itself and never imports the live ones of ``store/schema.py`` (only a column type).
It was rendered from ``store.schema.metadata`` by alembic's autogenerate (``render_python_code``) and is
not edited since; ``tests/worker/test_schema_agrees.py`` proves head and ``store/schema.py`` agree.

A store made by a pre-release build is stamped with one of the revisions this replaces ("0001" to "0005"):
``store.database.upgrade`` refuses it with ``RecreateStore`` instead of guessing (docs/operations.md).

Revision ID: r001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.column_types import UtcDateTime

revision = "r001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("crm", sa.String(length=20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("blocked_reason", sa.Text(), nullable=True),
        sa.Column("blocked_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("blocked_at", UtcDateTime(), nullable=True),
        sa.Column("next_due_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_accounts_next_due", "accounts", ["next_due_at"], unique=False)
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("fired", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("action_keys", sa.Text(), server_default="[]", nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("cohort", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_deal", "audit", ["account", "deal_id"], unique=False)
    op.create_index("ix_audit_run", "audit", ["run_id"], unique=False)
    op.create_table(
        "cursors",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_full_pull_at", UtcDateTime(), nullable=True),
        sa.Column("full_pull_run", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "history_deals",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("modified_at", UtcDateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account", "deal_id"),
    )
    op.create_table(
        "history_pulls",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("covers_since", UtcDateTime(), nullable=False),
        sa.Column("history_since", UtcDateTime(), nullable=True),
        sa.Column("untracked", sa.Text(), server_default="[]", nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "leases",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "ledger",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("crm_ids", sa.Text(), server_default="[]", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("cohort", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("account", "key"),
    )
    op.create_index("ix_ledger_status", "ledger", ["account", "status"], unique=False)
    op.create_table(
        "mirror_deals",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("modified_at", UtcDateTime(), nullable=False),
        sa.Column("seen_run", sa.String(length=40), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account", "deal_id"),
    )
    op.create_index("ix_mirror_deals_owner", "mirror_deals", ["account", "owner_id", "deal_id"], unique=False)
    op.create_table(
        "owners",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "owner_id"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.Text(), server_default="{}", nullable=False),
        sa.Column("api_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("api_daily_limit", sa.Integer(), nullable=True),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_account", "runs", ["account", "started_at"], unique=False)
    op.create_table(
        "workers",
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.Column("max_cycles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("holder"),
    )


def downgrade() -> None:
    tables = (
        "accounts audit cursors history_deals history_pulls leases ledger mirror_deals owners runs workers"
    )
    for table in tables.split():  # no foreign keys: any order
        op.drop_table(table)
