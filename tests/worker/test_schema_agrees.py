"""The schema is stated once: the migrations are its history, ``store/schema.py`` its present, and they agree.

The alembic migrations (store/migrations/versions/: the first release's frozen baseline, then later
changes) create and upgrade every real database; the queries use the ``Table`` objects of ``store.schema``.
The baseline was rendered from those tables once and is never regenerated, so this module is what keeps
them the same: a fresh database upgraded to head (SQLite always, PostgreSQL when
``FOLLOWUP_TEST_POSTGRES_URL`` is set, as in CI) is compared with ``store.schema.metadata`` by alembic's own
autogenerate comparison, with column types and server defaults compared too, and the primary keys (which
autogenerate does not look at) by reflection. A change to one side without the other fails here. The second
half proves the comparison sees each kind of drift, so an empty difference means something.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store import StateStore
from store.database import current_revision, head_revision
from store.schema import metadata


def _same_empty_default(
    _context: MigrationContext,
    _inspected_column: sa.Column[Any],
    _metadata_column: sa.Column[Any],
    inspected_default: str | None,
    _metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """SQLite reflects a default of ``''`` as ``('')``, which alembic's own comparison takes for a change.

    That one spelling is declared equal; every other default is left to alembic (``None``).
    """
    if inspected_default == "('')" and rendered_metadata_default == "":
        return False
    return None


def schema_differences(store: StateStore, declared: sa.MetaData) -> list[Any]:
    """What alembic would have to change in the migrated database to make it ``declared``; [] when equal."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": _same_empty_default},
        )
        return list(compare_metadata(context, declared))


def primary_key_differences(
    store: StateStore, declared: sa.MetaData
) -> dict[str, tuple[list[str], list[str]]]:
    """Tables whose primary key columns differ (migrated, declared); autogenerate does not compare them."""
    inspector = sa.inspect(store.engine)
    found: dict[str, tuple[list[str], list[str]]] = {}
    for name, table in declared.tables.items():
        migrated = inspector.get_pk_constraint(name)["constrained_columns"]
        wanted = [column.name for column in table.primary_key.columns]
        if sorted(migrated) != sorted(wanted):
            found[name] = (migrated, wanted)
    return found


def test_the_migrations_build_exactly_the_declared_schema(store: StateStore) -> None:
    """Upgraded to head, the database is ``store.schema``: tables, columns, types, nullability, server
    defaults, indexes and primary keys."""
    assert current_revision(store.engine) == head_revision()
    assert schema_differences(store, metadata) == []
    assert primary_key_differences(store, metadata) == {}
    migrated = set(sa.inspect(store.engine).get_table_names()) - {"alembic_version"}
    assert migrated == set(metadata.tables)


def declared_copy() -> sa.MetaData:
    """A copy of ``store.schema.metadata`` to change without touching the real one."""
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def _retype(declared: sa.MetaData) -> None:
    declared.tables["ledger"].c.kind.type = sa.String(41)


def _renull(declared: sa.MetaData) -> None:
    declared.tables["runs"].c.error.nullable = False


def _redefault(declared: sa.MetaData) -> None:
    column = declared.tables["ledger"].c.crm_ids
    column.server_default = sa.DefaultClause("{}")
    column.server_default.column = column


def _drop_empty_default(declared: sa.MetaData) -> None:
    declared.tables["owners"].c.name.server_default = None  # the '' default SQLite spells ('')


def _unindex(declared: sa.MetaData) -> None:
    table = declared.tables["audit"]
    table.indexes.discard(next(index for index in table.indexes if index.name == "ix_audit_run"))


def _add_column(declared: sa.MetaData) -> None:
    declared.tables["workers"].append_column(sa.Column("region", sa.String(20), nullable=True))


def _drop_table(declared: sa.MetaData) -> None:
    declared.remove(declared.tables["history_pulls"])


DRIFTS: dict[str, tuple[Callable[[sa.MetaData], None], str]] = {
    "a column's type": (_retype, "modify_type"),
    "a column's nullability": (_renull, "modify_nullable"),
    "a server default": (_redefault, "modify_default"),
    "an empty-string server default": (_drop_empty_default, "modify_default"),
    "an index": (_unindex, "remove_index"),
    "a column": (_add_column, "add_column"),
    "a table": (_drop_table, "remove_table"),
}


def _kinds(differences: list[Any]) -> set[str]:
    """The operation names of alembic's differences (column changes come as a list of tuples)."""
    kinds: set[str] = set()
    for difference in differences:
        for change in difference if isinstance(difference, list) else [difference]:
            kinds.add(change[0])
    return kinds


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_the_comparison_sees_every_kind_of_drift(store: StateStore, drift: str) -> None:
    """Declaring one thing differently from the migrations is reported, on each backend."""
    declared = declared_copy()
    change, expected = DRIFTS[drift]
    change(declared)
    assert expected in _kinds(schema_differences(store, declared))


def test_the_primary_key_check_sees_a_changed_key(store: StateStore) -> None:
    """A primary key declared differently from the migrations is reported (autogenerate would not)."""
    declared = declared_copy()
    leases = declared.tables["leases"]
    declared.remove(leases)
    columns = [sa.Column(c.name, c.type, primary_key=c.name in ("account", "holder")) for c in leases.columns]
    sa.Table("leases", declared, *columns)
    assert primary_key_differences(store, declared) == {"leases": (["account"], ["account", "holder"])}
