"""The worker's state: mirror of open deals, cursors, the action ledger and the audit trail.

``StateStore(url)`` opens (and migrates) a SQLite or PostgreSQL database through SQLAlchemy Core.
"""

from __future__ import annotations

from store.ledger import AuditEntry, LedgerEntry, Result
from store.state import Blocked, CursorState, RunRecord, StateStore

__all__ = ["AuditEntry", "Blocked", "CursorState", "LedgerEntry", "Result", "RunRecord", "StateStore"]
