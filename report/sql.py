"""The few expressions whose SQL differs between SQLite and PostgreSQL: a UTC day, a JSON text field.

The store keeps JSON documents as text (see ``store.schema``); aggregations that need a field of them (a
closed task's reason, the state a deal was moved to) read it in the database rather than loading the
documents: SQLite's ``json_extract`` and PostgreSQL's ``->>`` on a ``jsonb`` cast.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


def utc_day(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, as text ``YYYY-MM-DD`` on both backends."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)  # SQLite stores UTC timestamps as "YYYY-MM-DD HH:MM:SS..."


def json_text(column: sa.ColumnElement[Any], dialect: str, *path: str) -> sa.ColumnElement[Any]:
    """The text at ``path`` inside a JSON text column (NULL where it is absent)."""
    if dialect == "postgresql":
        document = sa.cast(column, postgresql.JSONB)
        text: sa.ColumnElement[Any] = document[path if len(path) > 1 else path[0]].astext
        return text
    return sa.func.json_extract(column, "$." + ".".join(path))
