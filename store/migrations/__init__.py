"""Alembic migrations of the state store, run programmatically by ``store.StateStore`` on open."""
