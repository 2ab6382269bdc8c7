"""``crm-sandbox salesforce`` as users run it: a separate process printing how to connect."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
from pathlib import Path

from crm_sandbox_tests.salesforce_helpers import API, trusted_session

ROOT = Path(__file__).resolve().parents[1]  # the sandbox distribution


def test_cli_serves_https_and_prints_credentials():
    """The command prints instance URL, CA file and token, serves queries with them, and stops on SIGTERM."""
    crm_sandbox = Path(sys.executable).parent / "crm-sandbox"
    command = [
        str(crm_sandbox),
        "salesforce",
        "--port",
        "0",
        "--deals",
        "20",
        "--now",
        "2026-01-15T09:00:00Z",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT
    )
    try:
        printed: dict[str, str] = {}
        assert server.stdout is not None
        for line in server.stdout:
            for key, pattern in (
                ("url", r"sandbox on (\S+)"),
                ("ca", r"CA file \(trust it\):\s+(\S+)"),
                ("token", r"access token:\s+(\S+)"),
                ("user", r"username:\s+(\S+)"),
            ):
                if m := re.search(pattern, line):
                    printed[key] = m.group(1)
            if len(printed) == 4:
                break
        assert printed["url"].startswith("https://127.0.0.1:")
        assert printed["user"] == "integration@crm-followup.sandbox"
        with trusted_session(printed["ca"]) as session:
            session.headers["Authorization"] = f"Bearer {printed['token']}"
            response = session.get(
                f"{printed['url']}/services/data/{API}/query/",
                params={"q": "SELECT COUNT() FROM Opportunity"},
            )
            total = response.json()["totalSize"]
            del response  # its socket, still open, would hold uvicorn's graceful shutdown
        gc.collect()
        assert total == 20
    finally:
        if server.stdout is not None:
            server.stdout.close()
        server.terminate()
        assert server.wait(60) == 0
    assert not Path(printed["ca"]).exists()
