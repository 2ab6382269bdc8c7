"""Whether the worker can open a state store URL: checked first, so a typo is a located settings error.

The worker supports SQLite and PostgreSQL (``docs/operations.md``); anything else, an unparsable URL or a
driver that is not installed would otherwise surface as a SQLAlchemy traceback on the first cycle.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

SUPPORTED = ("sqlite", "postgresql")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a state store (``None`` if it can); never echoes the URL (secrets)."""
    try:
        parsed = sa.engine.make_url(url)
    except ArgumentError:
        return (
            "not a database URL (e.g. sqlite:///state/followup.sqlite or postgresql+psycopg://user@host/db)"
        )
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        return f"{backend!r} is not supported: use sqlite or postgresql"
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"unknown driver {parsed.get_driver_name()!r} for {backend}"
    except ImportError as exc:
        extra = " (pip install 'crm-followup[postgres]')" if backend == "postgresql" else ""
        return f"the {parsed.get_driver_name()} driver is not installed: {exc.name}{extra}"
    return None
