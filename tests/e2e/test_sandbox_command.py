"""``followup sandbox hubspot`` runs the separate crm-sandbox distribution's server, as a user starts it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hubspot import HubSpot


def test_followup_sandbox_serves_the_crm_sandbox_portal():
    """The product's command delegates to crm-sandbox: a seeded portal the official client reads."""
    followup = Path(sys.executable).parent / "followup"
    command = [str(followup), "sandbox", "hubspot", "--port", "0", "--deals", "7", "--no-rate-limits"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        printed: dict[str, str] = {}
        assert server.stdout is not None
        for line in server.stdout:
            if m := re.search(r"sandbox on (\S+)", line):
                printed["url"] = m.group(1)
            if m := re.search(r"access token: (\S+)", line):
                printed["token"] = m.group(1)
            if len(printed) == 2:
                break
        client = HubSpot(access_token=printed["token"], host=printed["url"])
        page = client.crm.deals.basic_api.get_page(limit=100)
        assert len(page.results) == 7
    finally:
        if server.stdout is not None:
            server.stdout.close()
        server.terminate()
        assert server.wait(60) == 0


def test_followup_sandbox_lists_both_crms():
    """``followup sandbox --help`` names the two servers the crm-sandbox package provides."""
    followup = Path(sys.executable).parent / "followup"
    out = subprocess.run([str(followup), "sandbox", "--help"], capture_output=True, text=True, check=True)
    assert re.search(r"^\s+hubspot\s", out.stdout, re.M)
    assert re.search(r"^\s+salesforce\s", out.stdout, re.M)
