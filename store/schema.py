"""The state store's tables as SQLAlchemy Core objects, shared by the queries, checked against migrations.

The migrations in ``store/migrations/versions/`` are the schema's history (they alone create and upgrade a
database, run on open): the first release's baseline, frozen, then one migration per later change. These
``Table`` objects are its present, for the queries. They must agree, and
``tests/worker/test_schema_agrees.py`` proves it in CI: a fresh SQLite and PostgreSQL database upgraded to
head is compared with ``metadata`` by ``alembic.autogenerate.compare_metadata`` (tables, columns, types,
nullability, server defaults, indexes; primary keys by reflection), and any difference fails. So a schema
change is a change here and a new migration that makes it; CI fails on one without the other. (The
baseline was rendered from these tables by ``alembic.autogenerate.produce_migrations`` and
``render_python_code``; run against a store at head, the same two calls draft the next migration.)

Types are chosen to mean the same on SQLite and PostgreSQL: JSON documents are ``Text`` written by
``policies.codec`` (byte-stable, no dialect JSON quirks), timestamps go through ``UtcDateTime``
(``store/column_types.py``) so they come back timezone-aware in UTC on both.
"""

from __future__ import annotations

import sqlalchemy as sa

from store.column_types import UtcDateTime

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("crm", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # Set when the CRM said FixConfiguration: cycles stop until the configuration changes or a human runs
    # ``followup run --once``. ``blocked_fingerprint`` identifies the configuration that failed.
    sa.Column("blocked_reason", sa.Text(), nullable=True),
    sa.Column("blocked_fingerprint", sa.String(64), nullable=True),
    sa.Column("blocked_at", UtcDateTime(), nullable=True),
    # When the account's next cycle is due, for every worker of the fleet (sync/fleet.py): set when a
    # ``serve`` registers the account, moved on by the trigger when a cycle ends; NULL: not scheduled.
    sa.Column("next_due_at", UtcDateTime(), nullable=True),
    sa.Index("ix_accounts_next_due", "next_due_at"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("cursor", sa.Text(), nullable=True),  # JSON object, opaque to the worker; NULL: pull everything
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("last_full_pull_at", UtcDateTime(), nullable=True),
    # The run of a full pull in progress: a crash mid-way restarts the full pull (its removals are implied by
    # absence, so only a complete one may drop mirror rows).
    sa.Column("full_pull_run", sa.String(40), nullable=True),
)

mirror_deals = sa.Table(
    "mirror_deals",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("deal_id", sa.String(64), primary_key=True),
    sa.Column("owner_id", sa.String(64), nullable=False, server_default=""),  # "" for unowned: sort key
    sa.Column("is_closed", sa.Boolean(), nullable=False),
    sa.Column("modified_at", UtcDateTime(), nullable=False),
    sa.Column("seen_run", sa.String(40), nullable=True),
    sa.Column("data", sa.Text(), nullable=False),  # policies.codec.deal_to_json
    sa.Index("ix_mirror_deals_owner", "account", "owner_id", "deal_id"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("deal_id", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    # intent | applied | failed | conflict | retry_later | shadow (decided in shadow mode, never written)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),  # JSON of policies.codec.action_to_dict
    sa.Column("crm_ids", sa.Text(), nullable=False, server_default="[]"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # the rollout cohort the action was last recorded under (policies.rollout; NULL: recorded without one)
    sa.Column("cohort", sa.String(20), nullable=True),
    sa.Index("ix_ledger_status", "account", "status"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("deal_id", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("fired", sa.Boolean(), nullable=False),
    sa.Column("mode", sa.String(10), nullable=False),  # enforce | shadow
    sa.Column("outcome", sa.String(20), nullable=False),  # planned | deferred | no_action
    sa.Column("action_keys", sa.Text(), nullable=False, server_default="[]"),
    sa.Column("explanation", sa.Text(), nullable=False),  # JSON: reason and evidence
    sa.Column("cohort", sa.String(20), nullable=True),  # policies.rollout; NULL: recorded without one
    sa.Index("ix_audit_deal", "account", "deal_id"),
    sa.Index("ix_audit_run", "run_id"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    # running | ok | stopped | retry_later | fix_configuration | lease_held | blocked | error
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("shadow", sa.Boolean(), nullable=False),
    sa.Column("counts", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("api_calls", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.Text(), nullable=True),
    # The CRM's daily API limit as the connector last knew it (reported by the CRM, else configured):
    # the report's "share of the daily budget" divides by it.
    sa.Column("api_daily_limit", sa.Integer(), nullable=True),
    # When the scheduled cycle was due (NULL for ``run --once``): started_at - due_at is its lag.
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Index("ix_runs_account", "account", "started_at"),
)

# The CRM's owners as the last cycle read them: names and teams for the report (the mirror has owner ids).
owners = sa.Table(
    "owners",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("owner_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("time_zone", sa.String(64), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# The ``followup serve`` processes sharing the store (one row each while it runs): who holds the leases,
# since when, how many cycles it may run at once, and its last heartbeat (``followup status``).
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("holder", sa.String(200), primary_key=True),  # host:pid, as in leases.holder
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
    sa.Column("max_cycles", sa.Integer(), nullable=False),
)

# The backtest's history store (store/history.py): every deal a live backtest looked at (open, or changed in
# the period it covers), closed ones included, with its field history as the CRM keeps it. Pulled
# incrementally by ``followup backtest --settings``, apart from the cycle's mirror and cursor.
history_deals = sa.Table(
    "history_deals",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("deal_id", sa.String(64), primary_key=True),
    sa.Column("is_closed", sa.Boolean(), nullable=False),
    sa.Column("modified_at", UtcDateTime(), nullable=False),  # the deal's stamp when its history was read
    sa.Column("data", sa.Text(), nullable=False),  # policies.codec.deal_to_json
    sa.Column("history", sa.Text(), nullable=False),  # policies.codec.deal_history_to_json
)

history_pulls = sa.Table(
    "history_pulls",
    metadata,
    sa.Column("account", sa.String(100), primary_key=True),
    sa.Column("cursor", sa.Text(), nullable=True),  # the connector's cursor after the last history pull
    sa.Column("covers_since", UtcDateTime(), nullable=False),  # deals open or changed since then are held
    sa.Column(
        "history_since", UtcDateTime(), nullable=True
    ),  # where the CRM's history starts; NULL: creation
    sa.Column("untracked", sa.Text(), nullable=False, server_default="[]"),  # JSON list of field names
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
