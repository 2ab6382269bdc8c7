"""Alembic environment: online, migrations run on the connection ``store.database.upgrade`` hands over;
offline (``store.database.migration_sql``), they render the SQL for a dialect, for a DBA to review or apply.

``render_as_batch`` lets later migrations alter SQLite tables (which cannot ALTER most things in place).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

if context.is_offline_mode():
    context.configure(
        dialect_name=context.config.attributes.get("dialect", "postgresql"),
        literal_binds=True,
        render_as_batch=True,
        output_buffer=context.config.output_buffer,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _connection = context.config.attributes.get("connection")
    if not isinstance(_connection, Connection):
        raise TypeError("store migrations run through store.database.upgrade(), with a connection")
    context.configure(connection=_connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
