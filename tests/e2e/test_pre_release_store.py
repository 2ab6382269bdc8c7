"""``followup run --once``, ``status``, ``serve`` and ``report`` on a state store made by a pre-release build.

The first release squashed the pre-release migrations ("0001" to "0005") into one baseline; a store
stamped with one of them is refused by each command with exit status 2 and one located line that says
what to do (recreate the store), no traceback, no CRM call and nothing changed in the file. Doing what it
says is then checked too: on the recreated store the next run rebuilds the mirror by a full pull and finds
its tasks in the CRM by their keys, so not one is written twice.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, task_keys, write_settings

pytestmark = pytest.mark.slow

TOKEN_ENV = "PRE_RELEASE_TOKEN"


def followup(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=REPO,
        env={**os.environ, TOKEN_ENV: token},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def run_once(settings: Path, token: str) -> subprocess.CompletedProcess[str]:
    return followup(token, "run", "--once", "--settings", str(settings))


REFUSAL = (
    ": store.url: the state store was made by a pre-release build of crm-followup "
    "(schema revision '0005', which this version does not know), so it is left as it is: "
    "recreate it (delete the SQLite file, or drop and create the PostgreSQL database) and run again."
)


def assert_refused(done: subprocess.CompletedProcess[str], settings: Path) -> None:
    """Exit status 2 and one line, placed at the store setting, that says what to do; no traceback."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{settings}:1:")
    assert REFUSAL in lines[0]
    assert "nothing there is lost or duplicated" in lines[0]


def revision(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        (found,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return str(found)


def stamp(database: Path, value: str) -> None:
    """What a pre-release build left: its schema, stamped with its own revision."""
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (value,))
    connection.close()


def test_a_pre_release_store_is_refused_and_a_recreated_one_writes_no_task_twice(tmp_path: Path) -> None:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=7, deals=12) as hs:  # drawn as of now: the worker runs on real time
        settings = write_settings(tmp_path, host=hs.base_url, token_env=TOKEN_ENV)
        database = tmp_path / "state.sqlite"
        first = run_once(settings, hs.access_token)
        assert first.returncode == 0, first.stderr[-3000:]
        written = task_keys(hs)
        assert written
        assert set(written.values()) == {1}
        stamp(database, "0005")
        calls = hs.control.stats()["total"]

        refused = run_once(settings, hs.access_token)

        assert_refused(refused, settings)
        for command in (["status"], ["serve"], ["report", "--out", str(tmp_path / "report.html")]):
            assert_refused(followup(hs.access_token, *command, "--settings", str(settings)), settings)
        assert revision(database) == "0005"
        assert hs.control.stats()["total"] == calls  # not one CRM call

        for leftover in tmp_path.glob("state.sqlite*"):
            leftover.unlink()
        again = run_once(settings, hs.access_token)

        assert again.returncode == 0, again.stderr[-3000:]
        assert task_keys(hs) == written
