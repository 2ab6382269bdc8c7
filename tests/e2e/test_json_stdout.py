"""``--json`` output of the live commands is JSON on stdout and nothing else: logs go to stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import NOW, REPO, write_settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", [["plan"], ["explain"]], ids=["plan", "explain"])
def test_json_output_of_a_live_pull_parses_with_logs_on_stderr(tmp_path: Path, command: list[str]) -> None:
    """`followup plan|explain --settings FILE --json` piped into a JSON parser: stdout parses, logs are on
    stderr (the pull logs at info level)."""
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=5, deals=12, now=NOW) as hs:
        settings = write_settings(tmp_path, host=hs.base_url, token_env="E2E_JSON_TOKEN")
        settings.write_text(
            settings.read_text().replace("logging: {level: warning, format: json}", "logging: {level: info}")
        )
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from cli import main; main()",
                *command,
                "--settings",
                str(settings),
                "--json",
            ],
            cwd=REPO,
            env={**os.environ, "E2E_JSON_TOKEN": hs.access_token},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)  # the whole of stdout, as a pipe into a parser sees it
    if command == ["plan"]:
        assert document["actions"]
    else:
        assert document
        assert all(decision["deal_id"] and decision["verdicts"] for decision in document)
    assert '"event"' in result.stderr  # the pull did log, on stderr, as JSON lines (not a terminal)
