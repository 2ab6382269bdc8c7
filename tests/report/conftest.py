"""The report's tests use the state store fixtures of the worker tests (SQLite, and PostgreSQL when given)."""

from __future__ import annotations

from tests.worker.conftest import postgres_url, store

__all__ = ["postgres_url", "store"]
