"""Opening the state database: one engine per URL, SQLite tuned for a single writer, migrations on open.

SQLite (the default) runs in WAL mode with ``synchronous=FULL``: an intent committed before a CRM write must
survive a power cut too, or a restart could not know to look for it in the CRM. PostgreSQL needs nothing
special; URLs such as ``postgresql+psycopg://user@host/db`` work once the driver is installed
(``pip install 'crm-followup[postgres]'``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0002"


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite files the parent folder is created and WAL switched on."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; a no-op when it is current."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def migration_sql(dialect: str = "postgresql") -> str:
    """The whole schema as SQL for ``dialect``, without a database (``alembic upgrade --sql``)."""
    import io

    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["dialect"] = dialect
    command.upgrade(config, "head", sql=True)
    return buffer.getvalue()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upsert(
    connection: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], keys: Iterable[str]
) -> None:
    """Insert rows or, on a primary-key clash, overwrite the other columns (SQLite and PostgreSQL alike)."""
    if not rows:
        return
    key_set = set(keys)
    columns = [c for c in rows[0] if c not in key_set]
    name = connection.dialect.name
    statement: sa.Executable
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        lite = sqlite.insert(table)
        statement = lite.on_conflict_do_update(
            index_elements=sorted(key_set), set_={c: lite.excluded[c] for c in columns}
        )
    elif name == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(table)
        statement = pg.on_conflict_do_update(
            index_elements=sorted(key_set), set_={c: pg.excluded[c] for c in columns}
        )
    else:  # pragma: no cover - only the two supported backends reach here
        raise NotImplementedError(f"upsert on {name}")
    connection.execute(statement, list(rows))


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON for the text columns."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
