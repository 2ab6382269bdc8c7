"""A cycle that dies on an unexpected error is logged ``status=error``, never ``ok``.

The store refuses to record the account (a trigger on a migrated SQLite store aborts the insert with an
integrity error, as the loser of two workers racing on ``accounts.name`` got one): the cycle's first write
fails. Before, that exception escaped before the cycle's own error handling and ``cycle_finished`` still
said ``status=ok``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from store import StateStore
from tests.e2e.conftest import POLICY, REPO

pytestmark = pytest.mark.slow


def test_a_cycle_that_raises_is_logged_as_an_error(tmp_path: Path) -> None:
    database = tmp_path / "state.sqlite"
    store = StateStore(f"sqlite:///{database}")
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_accounts BEFORE INSERT ON accounts "
            "BEGIN SELECT RAISE(ABORT, 'the store refuses new accounts'); END"
        )
    store.close()
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        f"store: {{url: 'sqlite:///{database}'}}\n"
        "logging: {level: info, format: json}\n"
        "accounts:\n"
        "  demo:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        "    hubspot: {host: 'http://127.0.0.1:9', access_token_env: ERROR_STATUS_TOKEN}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "run", "--once", "--settings", str(settings)],
        cwd=REPO,
        env={**os.environ, "ERROR_STATUS_TOKEN": "pat-na1-unused"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    finished = [(e["status"], e["error"]) for e in events if e["event"] == "cycle_finished"]
    assert finished == [("error", "IntegrityError")], done.stderr[-3000:]
    assert done.returncode == 1
    assert "the store refuses new accounts" in done.stderr  # the traceback of a real failure is kept
