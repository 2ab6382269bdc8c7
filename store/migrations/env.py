"""Alembic environment: migrations run on the connection ``store.migrate`` hands over, never from a URL.

``render_as_batch`` lets later migrations alter SQLite tables (which cannot ALTER most things in place).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise TypeError("store migrations run through store.database.upgrade(), with a connection")
context.configure(connection=_connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
