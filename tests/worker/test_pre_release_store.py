"""A store made by a build whose schema revision this one does not have is refused, and left as it is.

The pre-release builds migrated their stores through revisions "0001" to "0005"; the first release squashed
them into one baseline ("r001"), so those revisions no longer exist. Before, a "0005" store was taken for
current (its head was "0005") and a "0001" one crashed half-way through upgrading; now both are refused
with ``RecreateStore``, whose message names the next move, and nothing in the database is changed. The
same through ``followup run --once`` is in tests/e2e/test_pre_release_store.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa

from store import StateStore
from store.database import MIGRATIONS, PRE_RELEASE_REVISIONS, RecreateStore, current_revision


def stamp(url: str, revision: str) -> None:
    """Mark the store at ``url`` as migrated to ``revision``, as the build that made it left it."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", ["0001", "0005"])
def test_a_pre_release_store_is_refused_and_left_as_it_is(store: StateStore, revision: str) -> None:
    """The message says who made the store, what to do (recreate it) and what that costs."""
    store.close()
    stamp(store.url, revision)
    with pytest.raises(RecreateStore) as refused:
        StateStore(store.url)
    message = str(refused.value)
    assert f"made by a pre-release build of crm-followup (schema revision {revision!r}" in message
    assert "recreate it (delete the SQLite file, or drop and create the PostgreSQL database)" in message
    assert "A full pull rebuilds a new store's mirror" in message
    assert "run the version that made it" not in message
    assert refused.value.revision == revision
    assert revision_of(store.url) == revision


def test_a_store_of_another_version_is_refused(store: StateStore) -> None:
    """A revision that is not a pre-release one (say, a newer release's): run that version, or recreate."""
    store.close()
    stamp(store.url, "r999")
    with pytest.raises(
        RecreateStore, match=r"made by another version of crm-followup \(schema revision 'r999'"
    ):
        StateStore(store.url)
    with pytest.raises(RecreateStore, match="run the version that made it, or recreate it"):
        StateStore(store.url)
    assert revision_of(store.url) == "r999"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


def test_the_migrations_are_frozen_and_reuse_no_pre_release_revision() -> None:
    """Each migration states its own tables (of the product, only column types), and no revision id is one
    a pre-release store may carry: such a store would otherwise pass for a current one."""
    scripts = sorted((MIGRATIONS / "versions").glob("*.py"))
    migrations = [path for path in scripts if path.name != "__init__.py"]
    assert migrations
    revisions = set()
    for path in migrations:
        product = {name for name in _imports(path) if name.split(".")[0] in {"store", "policies", "config"}}
        assert product <= {"store.column_types"}, path.name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "revision":
                assert isinstance(node.value, ast.Constant)
                revisions.add(node.value.value)
    assert len(revisions) == len(migrations)
    assert not revisions & PRE_RELEASE_REVISIONS
