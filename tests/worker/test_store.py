"""The state store: batches and cursors commit together, leases exclude, files stay private.

That the migrations build exactly ``store.schema`` is tests/worker/test_schema_agrees.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from store import StateStore
from store.schema import accounts
from store.state import _in_transaction
from tests.worker.conftest import T0, make_deal


def test_reopening_keeps_the_data(store: StateStore) -> None:
    """Opening the same database again migrates nothing and sees the stored cursor."""
    store.store_batch("acme", "r1", [make_deal(1)], (), {"seq": "7"}, T0)
    again = StateStore(store.url)
    try:
        assert again.cursor_state("acme").cursor == {"seq": "7"}
    finally:
        again.close()


def test_batch_and_cursor_commit_together(store: StateStore) -> None:
    """A stored batch puts its deals in the mirror and moves the cursor; timestamps come back in UTC."""
    store.store_batch("acme", "r1", [make_deal(1), make_deal(2)], (), {"seq": "2"}, T0)
    state = store.cursor_state("acme")
    assert state.cursor == {"seq": "2"}
    assert state.updated_at == T0
    assert sorted(store.mirror_deals("acme", ["D0001", "D0002"])) == ["D0001", "D0002"]


def test_complete_full_pull_drops_unseen_deals(store: StateStore) -> None:
    """Deals a completed full pull did not return leave the mirror; those it returned stay."""
    store.store_batch("acme", "r1", [make_deal(1), make_deal(2)], (), {"seq": "2"}, T0)
    store.begin_full_pull("acme", "r2", T0)
    store.store_batch("acme", "r2", [make_deal(2)], (), {"seq": "3"}, T0)
    assert store.cursor_state("acme").full_pull_run == "r2"
    assert store.finish_full_pull("acme", "r2", T0) == 1
    assert list(store.mirror_deals("acme", ["D0001", "D0002"])) == ["D0002"]
    assert store.cursor_state("acme").full_pull_run is None


def test_a_write_through_during_a_full_pull_keeps_the_deal_seen(store: StateStore) -> None:
    """Crash recovery writes outcomes through before a resumed full pull finishes: the deal stays."""
    store.begin_full_pull("acme", "r1", T0)
    assert store.cursor_state("acme").cursor is None  # from now on the cursor is the pull's resume point
    store.store_batch("acme", "r1", [make_deal(1), make_deal(2)], (), {"seq": "2"}, T0)
    store.record_results("acme", [], [make_deal(1)], T0)
    assert store.finish_full_pull("acme", "r1", T0) == 0
    assert sorted(store.mirror_deals("acme", ["D0001", "D0002"])) == ["D0001", "D0002"]


def test_mirror_chunks_never_split_an_owner(store: StateStore) -> None:
    """Chunks follow owners: an owner's deals are planned together, so per-owner budgets hold."""
    deals = [make_deal(i, owner="o1") for i in range(5)] + [make_deal(i, owner="o2") for i in range(5, 8)]
    store.store_batch("acme", "r1", deals, (), {}, T0)
    chunks = list(store.iter_mirror("acme", 2))
    assert [len(c) for c in chunks] == [5, 3]
    assert {d.owner_id for d in chunks[0]} == {"o1"}


def test_lease_excludes_a_second_holder_until_it_expires(store: StateStore) -> None:
    """Only one holder at a time; an expired lease can be taken over."""
    ttl = timedelta(minutes=10)
    assert store.acquire_lease("acme", "a:1", T0, ttl)
    assert not store.acquire_lease("acme", "b:2", T0 + timedelta(minutes=5), ttl)
    assert store.acquire_lease("acme", "a:1", T0 + timedelta(minutes=5), ttl)
    assert store.acquire_lease("acme", "b:2", T0 + timedelta(minutes=16), ttl)
    assert store.lease_holder("acme") == ("b:2", T0 + timedelta(minutes=26))


def test_migrations_render_for_postgresql() -> None:
    """The migrations render PostgreSQL DDL offline: every table, with timezone-aware timestamps."""
    from store.database import head_revision, migration_sql

    sql = migration_sql("postgresql")
    from store.schema import metadata

    for table in metadata.tables:
        assert f"CREATE TABLE {table} (" in sql
    assert "TIMESTAMP WITH TIME ZONE" in sql
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{head_revision()}')" in sql


def test_owners_are_replaced_per_account(store: StateStore) -> None:
    """Each cycle's directory replaces the account's owners: names and teams for the report."""
    from policies.model import Owner

    store.record_owners("acme", [Owner("o1", "Anna", team="North"), Owner("o2", "Bo")], T0)
    store.record_owners("other", [Owner("x", "Xi")], T0)
    moved = Owner("o1", "Anna A.", "a@x.example", "Europe/Oslo", team="South", active=False)
    store.record_owners("acme", [moved], T0)
    # The email is not kept: the report needs names, teams and zones only.
    assert store.owners("acme") == {
        "o1": Owner("o1", "Anna A.", None, "Europe/Oslo", team="South", active=False)
    }
    assert list(store.owners("other")) == ["x"]


def test_a_run_keeps_its_daily_api_limit(store: StateStore) -> None:
    """The daily limit the connector knew at the end of a run is kept with the run."""
    store.start_run("r1", "acme", "h:1", False, T0)
    store.finish_run("r1", "ok", {"pulled": 3}, 12, None, T0, api_daily_limit=250_000)
    assert store.runs("acme")[0].api_daily_limit == 250_000


def test_a_new_sqlite_store_is_private_to_its_owner(tmp_path) -> None:
    """The SQLite file holds contact names: created 0600 in a folder created 0700 (WAL files alike)."""
    path = tmp_path / "state" / "nested" / "followup.sqlite"
    store = StateStore(f"sqlite:///{path}")
    try:
        store.ensure_account("acme", "memory", T0)
        modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()}
    finally:
        store.close()
    assert modes["followup.sqlite"] == 0o600
    assert set(modes.values()) == {0o600}  # -wal and -shm follow the database file
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_an_existing_store_keeps_the_permissions_its_operator_chose(tmp_path) -> None:
    """Only what the worker creates is made private; an existing file's mode is left alone."""
    path = tmp_path / "shared.sqlite"
    path.touch(mode=0o640)
    path.chmod(0o640)
    StateStore(f"sqlite:///{path}").close()
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_method_bound_to_a_query_is_one_transaction(store: StateStore) -> None:
    """``StateStore`` methods such as ``record_actions`` are queries bound by ``_in_transaction``: the query
    gets a connection and the method's arguments, its writes commit when it returns and none survive an
    error half-way."""

    def record_then_maybe_fail(connection: sa.Connection, name: str, *, fail: bool) -> str:
        connection.execute(sa.insert(accounts).values(name=name, crm="hubspot", created_at=T0))
        if fail:
            raise RuntimeError("half-way")
        return name.upper()

    method = _in_transaction(record_then_maybe_fail)
    assert method(store, "kept", fail=False) == "KEPT"
    with pytest.raises(RuntimeError, match="half-way"):
        method(store, "lost", fail=True)
    with store.engine.connect() as connection:
        assert list(connection.execute(sa.select(accounts.c.name))) == [("kept",)]
