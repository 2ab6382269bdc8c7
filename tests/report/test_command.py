"""``followup report`` refuses what it cannot use with a located message and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import write_settings

FOLLOWUP = str(Path(sys.executable).parent / "followup")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FOLLOWUP, "report", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_an_unknown_account_is_named(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, host="http://127.0.0.1:9", token_env="UNSET_TOKEN")
    done = _run("--settings", str(settings), "--account", "nope", "--out", str(tmp_path / "r.html"))
    assert done.returncode == 2
    assert "no account named 'nope' (accounts: demo)" in done.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_bad_period_is_refused(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, host="http://127.0.0.1:9", token_env="UNSET_TOKEN")
    done = _run("--settings", str(settings), "--since", "a month", "--out", str(tmp_path / "r.html"))
    assert done.returncode == 2
    assert "--since" in done.stderr
    assert 'expected a time span such as "30s"' in done.stderr


def test_an_empty_store_still_gives_a_page(tmp_path: Path) -> None:
    """Before the first cycle: every section says there is nothing yet, and the file is written."""
    settings = write_settings(
        tmp_path, host="http://127.0.0.1:9", token_env="UNSET_TOKEN", extra="      portal_id: 7\n"
    )
    out = tmp_path / "r.html"
    done = _run("--settings", str(settings), "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert 'data-key="open_deals"><dt>open deals in follow-up</dt><dd class="value">0</dd>' in html
    assert "Nothing in the period." in html
