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


def test_followup_sandbox_serves_many_portals_each_its_own_data():
    """``followup sandbox hubspot --portals 3``: the listing's tokens reach three portals through the official
    client, each with its own deals (seeded seed + n), and the introspection counts each portal apart."""
    import requests

    followup = Path(sys.executable).parent / "followup"
    command = [str(followup), "sandbox", "hubspot", "--port", "0", "--portals", "3", "--deals", "5"]
    command.append("--no-rate-limits")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert server.stdout is not None
        url = next(m.group(1) for line in server.stdout if (m := re.search(r"sandbox on (\S+)", line)))
        listing = requests.get(f"{url}/__sandbox__/portals", timeout=10).json()["portals"]
        assert len(listing) == 3
        names = []
        for portal in listing:
            client = HubSpot(access_token=portal["access_token"], host=url)
            page = client.crm.deals.basic_api.get_page(limit=100, properties=["dealname"])
            names.append(sorted(d.properties["dealname"] for d in page.results))
        assert [len(n) for n in names] == [5, 5, 5]
        assert names[0] != names[1] != names[2]
        client = HubSpot(access_token=listing[2]["access_token"], host=url)
        client.crm.deals.basic_api.get_page(limit=1)
        per_portal = [
            requests.get(f"{url}/__sandbox__/portals/{n}/stats", timeout=10).json()["total"] for n in range(3)
        ]
        assert per_portal == [1, 1, 2]
    finally:
        if server.stdout is not None:
            server.stdout.close()
        server.terminate()
        assert server.wait(60) == 0
