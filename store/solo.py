"""SQLite serves one ``followup serve`` process: a second one pointed at the same file is told so at start.

SQLite is the embedded default: one worker process on one machine, with the file on a local disk. Several
``serve`` processes on one SQLite file would all claim work through a database that serialises every
writer (and a network file system breaks its locking), so the second one refuses to start instead. The
guard is an exclusive ``flock`` on ``<database>.serve.lock`` held for the life of the process: the kernel
drops it when the process ends, however it ends, so a killed worker never leaves a stale lock behind. The
file holds the holder's pid, for the message. ``followup run --once`` does not take it (a one-off cycle
next to a running ``serve`` is fine: the account lease keeps them apart).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


class AnotherWorker(Exception):
    """Another ``followup serve`` process holds this SQLite store."""

    def __init__(self, database: Path, pid: str) -> None:
        super().__init__(
            f"another followup serve (pid {pid or 'unknown'}) is running on the SQLite store {database}; "
            "SQLite serves one worker process: stop the other one, or share a PostgreSQL store between "
            "the workers (docs/operations.md, Running a fleet)"
        )
        self.database = database
        self.pid = pid


def sqlite_database(url: str) -> Path | None:
    """The SQLite file of ``url`` (None for PostgreSQL or an in-memory database)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


@contextmanager
def single_worker(url: str) -> Iterator[None]:
    """Hold the SQLite store's worker lock for the block; raise ``AnotherWorker`` if someone has it.

    A no-op for PostgreSQL, which any number of workers share.
    """
    database = sqlite_database(url)
    if database is None:
        yield
        return
    if not database.parent.exists():  # as the store would create it: private (store/database.py)
        database.parent.parent.mkdir(parents=True, exist_ok=True)
        database.parent.mkdir(mode=0o700, exist_ok=True)
    lock_path = database.with_name(database.name + ".serve.lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
            raise AnotherWorker(database, pid) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock
