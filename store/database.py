"""Opening the state database: one engine per URL, SQLite tuned for a single writer, migrations on open.

SQLite (the default) runs in WAL mode with ``synchronous=FULL``: an intent committed before a CRM write must
survive a power cut too, or a restart could not know to look for it in the CRM. A SQLite file this module
creates is readable by its owner only (0600, and its folder 0700 when it creates that too): the mirror
holds deal and contact names. PostgreSQL URLs such as
``postgresql+psycopg://user@host/db`` work once the driver is installed
(``pip install 'crm-followup[postgres]'``).

A PostgreSQL session of the worker carries ``idle_in_transaction_session_timeout`` (the store setting
``store.idle_in_transaction_timeout``) and ``lock_timeout`` at twice that: a worker frozen in the middle of a
transaction (SIGSTOP, a paused VM, a stalled container, a long GC pause) would otherwise keep that
transaction's row locks until its process is killed, and every other worker would skip the accounts it locked
(``FOR UPDATE SKIP LOCKED``) or wait on its lease rows without end. The server ends such a session and its
locks go with it, and no statement waits for a lock longer than twice the timeout. A lost connection (that
session, a database restart) or a lock wait past ``lock_timeout`` surfaces as ``StoreUnavailable``: nothing of
the transaction was committed, and the next one gets a new connection if it needs one (``pool_pre_ping``). A
read whose caller works between rows (a slow consumer) reads in short transactions of its own
(``store/history.py``, ``store/mirror.py``). ``followup report`` opens its store without the setting: it only
reads, takes no row locks, and streams whole mirrors while it works on each row.

Migrations run when a store is opened, so several workers started at once all try to migrate: ``upgrade``
serialises them (PostgreSQL: a transaction-scoped advisory lock; SQLite: one ``BEGIN EXCLUSIVE``
transaction around the whole upgrade), and the ones that wait find the schema current and do nothing. A
store stamped with a revision these migrations do not have (one made by a pre-release build, whose
migrations the first release squashed into one baseline, or by another version) is refused with
``RecreateStore`` before anything is changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).with_name("migrations")
# The revisions of the pre-release builds, squashed into the first release's baseline ("r001").
PRE_RELEASE_REVISIONS = frozenset({"0001", "0002", "0003", "0004", "0005"})
# pg_advisory_xact_lock key of the schema migration: any constant shared by every crm-followup worker
# ("crm-fol" as a 64-bit integer, so it cannot collide with a small key another application picked).
MIGRATION_LOCK_KEY = int.from_bytes(b"crm-fol", "big")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL below may wait for another worker
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_private_file(path: Path) -> None:
    """Create ``path`` readable and writable by its owner only (0600), its folder 0700 if it is new.

    An existing file or folder keeps the permissions it has (an operator may have chosen them).
    SQLite gives its ``-wal`` and ``-shm`` files the permissions of the database file.
    """
    folder = path.parent
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(descriptor)


class StoreUnavailable(Exception):
    """The state store could not finish the transaction: its connection was lost (the server ended an
    idle-in-transaction session, restarted, or the network dropped), or it waited past ``lock_timeout`` for
    a row another session holds. Nothing of that transaction was committed: try again later (the next
    transaction gets a new connection if it needs one)."""


def open_engine(
    url: str, *, pool_size: int | None = None, idle_in_transaction_timeout: timedelta | None = None
) -> Engine:
    """An engine for ``url``; a SQLite file is created private (0600) if missing, and WAL switched on.

    ``pool_size`` (PostgreSQL): connections the pool keeps; as many again may open briefly under a burst.
    ``idle_in_transaction_timeout`` (PostgreSQL): every session of the engine is ended by the server once it
    has sat that long inside a transaction without sending a statement (None: the server's own setting).
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            create_private_file(Path(database).expanduser())
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if pool_size is None:
        engine = sa.create_engine(url, pool_pre_ping=True)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    if idle_in_transaction_timeout is not None:
        milliseconds = max(1, round(idle_in_transaction_timeout.total_seconds() * 1000))
        sa.event.listen(engine, "connect", partial(_postgres_session_timeout, milliseconds))
    sa.event.listen(engine, "handle_error", _connection_lost)
    return engine


def _postgres_session_timeout(
    milliseconds: int, dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
) -> None:
    """Set the session's timeouts when the pool opens the connection: ``idle_in_transaction_session_timeout``
    (the server ends the session of a client that went quiet inside a transaction) and ``lock_timeout`` at
    twice that (a statement waits for a row lock at most that long, then fails: it outlasts any holder the
    first timeout ends, and bounds the wait on one it cannot end, such as a frozen client whose session is
    stuck sending it a result). The migration's lock is exempt (``_migration_transaction``).

    ``SET`` when the connection opens rather than a startup option, so a URL's own ``options`` stay as they
    are; committed at once, so it lasts for the session.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET idle_in_transaction_session_timeout = {int(milliseconds)}")
    cursor.execute(f"SET lock_timeout = {2 * int(milliseconds)}")
    cursor.close()
    dbapi_connection.commit()


LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a statement that waited past lock_timeout


def _connection_lost(context: sa.engine.ExceptionContext) -> None:
    """A disconnect in the middle of a transaction (after SQLAlchemy has invalidated the connection), or a
    lock wait past ``lock_timeout``, becomes ``StoreUnavailable``; the pool's pre-ping, which expects
    disconnects, is left alone."""
    error = context.original_exception
    said = str(error).strip().splitlines()
    detail = f"{type(error).__name__}{': ' + said[0] if said else ''}"
    if getattr(error, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        raise StoreUnavailable(
            f"the state store kept a row locked past lock_timeout ({detail}); nothing of the transaction "
            "was committed"
        ) from context.sqlalchemy_exception
    if context.is_disconnect and not context.is_pre_ping and context.connection is not None:
        raise StoreUnavailable(
            f"the state store connection was lost ({detail}); nothing of the transaction was committed"
        ) from context.sqlalchemy_exception


class RecreateStore(Exception):
    """The store was made by a build whose schema this one does not know: recreate it (the message says how).

    ``revision`` is the one the store is stamped with.
    """

    def __init__(self, revision: str) -> None:
        recreate = (
            "recreate it (delete the SQLite file, or drop and create the PostgreSQL database) and run again"
        )
        if revision in PRE_RELEASE_REVISIONS:
            made_by, next_move = "a pre-release build of crm-followup", recreate
        else:
            made_by, next_move = (
                "another version of crm-followup",
                f"run the version that made it, or {recreate}",
            )
        super().__init__(
            f"the state store was made by {made_by} (schema revision {revision!r}, which this version "
            f"does not know), so it is left as it is: {next_move}. A full pull rebuilds a new store's "
            "mirror, and the tasks already in the CRM are known by their keys: nothing there is lost or "
            "duplicated; the old store's run history and audit trail are not carried over "
            "(docs/operations.md, State store)"
        )
        self.revision = revision


def _config(**options: Any) -> Config:
    config = Config(**options)
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest migration's revision: what ``upgrade`` brings every store to."""
    head = _scripts().get_current_head()
    assert head is not None, "store/migrations/versions holds no migration"
    return head


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; a no-op when it is current.

    Serialised across processes (see the module docstring): a worker that waits for another one's upgrade
    then finds the schema current. Raises ``RecreateStore``, changing nothing, for a store stamped with a
    revision the migrations do not have.
    """
    scripts = _scripts()
    found = current_revision(engine)
    if found == scripts.get_current_head():
        return  # the usual case: nothing to do, and no need to hold every other worker up for it
    if found is not None and found not in {script.revision for script in scripts.walk_revisions()}:
        raise RecreateStore(found)
    config = _config()
    with _migration_transaction(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction that only one process at a time can hold, for the whole upgrade."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # A migration may take its time: the waiters wait for it whatever the session's lock_timeout.
            connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
            # Released at commit; PostgreSQL's DDL is transactional, so the waiter sees the finished schema.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            yield connection
        return
    if engine.dialect.name != "sqlite":  # pragma: no cover - only the two supported backends reach here
        raise NotImplementedError(f"migrations on {engine.dialect.name}")
    with engine.connect() as connection:
        # pysqlite runs DDL outside any transaction unless told otherwise: take transaction control (the
        # driver then begins nothing itself) and hold SQLite's exclusive lock from the first read of the
        # schema version to the commit of the last table. Waiters block up to busy_timeout.
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            yield connection
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")


def migration_sql(dialect: str = "postgresql") -> str:
    """The whole schema as SQL for ``dialect``, without a database (``alembic upgrade --sql``)."""
    import io

    buffer = io.StringIO()
    config = _config(output_buffer=buffer)
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


def insert_if_absent(connection: Connection, table: sa.Table, keys: Iterable[str]) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for the connection's dialect (SQLite and PostgreSQL)."""
    name = connection.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    raise NotImplementedError(f"insert_if_absent on {name}")  # pragma: no cover - two backends only


IN_LIST = 500  # values per ``IN (...)`` list: SQLite bounds the parameters of one statement


def in_lists(values: Collection[str]) -> Iterator[list[str]]:
    """``values`` in lists short enough for one ``IN (...)`` each."""
    items = list(values)
    for start in range(0, len(items), IN_LIST):
        yield items[start : start + IN_LIST]


def column_by_key(
    connection: Connection, table: sa.Table, account: str, key: str, column: str, keys: Collection[str]
) -> dict[Any, Any]:
    """``column`` of the account's rows whose ``key`` is one of ``keys`` (absent rows are left out)."""
    out: dict[Any, Any] = {}
    for chunk in in_lists(keys):
        rows = connection.execute(
            sa.select(table.c[key], table.c[column]).where(
                table.c.account == account, table.c[key].in_(chunk)
            )
        )
        out.update((k, v) for k, v in rows)
    return out


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON for the text columns."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
