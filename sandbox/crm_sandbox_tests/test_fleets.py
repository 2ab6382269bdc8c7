"""One sandbox server, many CRM accounts: HubSpot portals by token, Salesforce orgs by session and login.

Driven with the unmodified official clients, as the single-account sandboxes are. Each account must be a
world of its own (data, token, rate limits, daily budget, faults, stats), built only when first used.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from crm_sandbox.control_client import SandboxControlError
from crm_sandbox.faults import FaultConfig
from crm_sandbox.hubspot.fleet import running_hubspot_fleet
from crm_sandbox.hubspot.ratelimit import RateLimitConfig
from crm_sandbox.salesforce.fleet import running_salesforce_fleet
from hubspot import HubSpot
from hubspot.crm.deals.exceptions import ApiException
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceRefusedRequest

from crm_sandbox_tests.salesforce_helpers import login_session, trusted_session

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def deal_names(base_url: str, token: str) -> list[str]:
    api = HubSpot(access_token=token, host=base_url)
    page = api.crm.deals.basic_api.get_page(limit=100, properties=["dealname"])
    return sorted(d.properties["dealname"] for d in page.results)


def portal_states(base_url: str) -> list[tuple[int, bool, int]]:
    listing = requests.get(f"{base_url}/__sandbox__/portals", timeout=10).json()["portals"]
    return [(p["portal"], p["built"], p["requests"]) for p in listing]


def test_each_hubspot_portal_is_its_own_world_reached_by_its_token() -> None:
    """Three portals on one server: each token sees its own deals, portals are built on first use, stats
    and faults are per portal, the server's stats add them up, and an unknown token gets HubSpot's 401."""
    with running_hubspot_fleet(portals=3, deals=12, seed=40, now=NOW) as fleet:
        assert portal_states(fleet.base_url) == [(0, False, 0), (1, False, 0), (2, False, 0)]
        first, second = (
            deal_names(fleet.base_url, fleet.tokens[0]),
            deal_names(fleet.base_url, fleet.tokens[1]),
        )
        assert len(first) == len(second) == 12
        assert first != second
        assert portal_states(fleet.base_url) == [(0, True, 1), (1, True, 1), (2, False, 0)]
        listing = requests.get(f"{fleet.base_url}/__sandbox__/portals", timeout=10).json()["portals"]
        assert [p["access_token"] for p in listing] == list(fleet.tokens)
        assert listing[1]["portal_id"] == 40_000_041

        fleet.control_for(1).set_faults(FaultConfig(error_rate=1.0, seed=1))
        with pytest.raises(ApiException) as failed:
            HubSpot(access_token=fleet.tokens[1], host=fleet.base_url).crm.deals.basic_api.get_page(limit=1)
        assert failed.value.status >= 500
        assert len(deal_names(fleet.base_url, fleet.tokens[0])) == 12  # portal 0 is unaffected
        assert fleet.control_for(1).stats()["faults"]["server_error"] == 1
        assert fleet.control_for(0).stats()["total"] == 2
        total = fleet.control.stats()
        assert total["total"] == 4
        assert total["portals"] == {"0": 2, "1": 2}

        with pytest.raises(ApiException) as refused:
            HubSpot(access_token="pat-na1-not-a-portal", host=fleet.base_url).crm.deals.basic_api.get_page()
        assert refused.value.status == 401
        assert "INVALID_AUTHENTICATION" in str(refused.value.body)
        with pytest.raises(SandboxControlError, match="no such portal"):
            fleet.control_for(7).stats()


def test_hubspot_portals_have_their_own_rate_limit_windows() -> None:
    """A portal that spent its 10-second window is refused (429); the other portal's window is untouched."""
    limits = RateLimitConfig(per_ten_seconds=3)
    with running_hubspot_fleet(portals=2, deals=5, seed=3, now=NOW, rate_limits=limits) as fleet:
        api = HubSpot(access_token=fleet.tokens[0], host=fleet.base_url)
        for _ in range(3):
            api.crm.deals.basic_api.get_page(limit=1)
        with pytest.raises(ApiException) as limited:
            api.crm.deals.basic_api.get_page(limit=1)
        assert limited.value.status == 429
        assert len(deal_names(fleet.base_url, fleet.tokens[1])) == 5


def test_fleet_controls_set_every_portal_s_faults_and_the_shared_clock() -> None:
    """The server's own /faults reaches portals built before and after; /clock moves every portal."""
    with running_hubspot_fleet(portals=2, deals=5, seed=3, now=NOW) as fleet:
        deal_names(fleet.base_url, fleet.tokens[0])
        fleet.control.set_faults(FaultConfig(latency_ms=1, seed=5))
        assert fleet.control_for(0).faults().seed == 5
        assert fleet.control_for(1).faults().seed == 6  # built after: seed + n
        later = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
        fleet.control.set_clock(later)
        assert fleet.control_for(1).clock() == later


def test_each_salesforce_org_is_its_own_world_reached_by_login_and_session() -> None:
    """Two orgs behind one HTTPS server, one connected app: a JWT login names the org by its username and
    sees that org's opportunities; the client-credentials login goes to the org's own URL; a session id
    only ever reaches its org; the daily API budget and the stats are per org."""
    with running_salesforce_fleet(orgs=2, deals=8, seed=20, now=NOW) as fleet:
        with trusted_session(fleet.ca_file) as session:
            listing = session.get(f"{fleet.instance_url}/__sandbox__/orgs", timeout=10).json()["orgs"]
        assert [(o["username"], o["built"]) for o in listing] == [
            (fleet.usernames[0], False),
            (fleet.usernames[1], False),
        ]
        names = []
        for org in (0, 1):
            with login_session(fleet.ca_file, fleet.instance_url, "login.salesforce.com") as session:
                sf = Salesforce(
                    username=fleet.usernames[org],
                    consumer_key=fleet.consumer_key,
                    privatekey_file=str(fleet.private_key_file),
                    session=session,
                )
                found = sf.query("SELECT Name FROM Opportunity ORDER BY Name")["records"]
                names.append([r["Name"] for r in found])
                assert sf.session_id[:15] == listing[org]["org_id"][:15]
        assert len(names[0]) == len(names[1]) == 8
        assert names[0] != names[1]

        with login_session(fleet.ca_file, fleet.org_url(1), "sandbox.my.salesforce.com") as session:
            sf = Salesforce(
                consumer_key=fleet.client_id,
                consumer_secret=fleet.client_secret,
                domain="sandbox.my",
                session=session,
            )
            found = sf.query("SELECT Name FROM Opportunity ORDER BY Name")["records"]
            assert [r["Name"] for r in found] == names[1]
            org1_session = sf.session_id

        with trusted_session(fleet.ca_file) as session:
            used = session.post(
                f"{fleet.instance_url}/__sandbox__/orgs/0/salesforce/api-usage",
                json={"limit": 50, "used": 50},
                timeout=10,
            ).json()
            assert used == {"used": 50, "limit": 50}
            sf1 = Salesforce(instance_url=fleet.instance_url, session_id=org1_session, session=session)
            assert sf1.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 8  # org 1 has budget left
        with login_session(fleet.ca_file, fleet.instance_url, "login.salesforce.com") as session:
            sf0 = Salesforce(
                username=fleet.usernames[0],
                consumer_key=fleet.consumer_key,
                privatekey_file=str(fleet.private_key_file),
                session=session,
            )
            with pytest.raises(SalesforceRefusedRequest) as spent:
                sf0.query("SELECT COUNT() FROM Opportunity")
            assert "REQUEST_LIMIT_EXCEEDED" in str(spent.value)

        with trusted_session(fleet.ca_file) as session:
            stranger = Salesforce(
                instance_url=fleet.instance_url, session_id="00Dxx0000000001!AQ-nope", session=session
            )
            with pytest.raises(SalesforceExpiredSession):
                stranger.query("SELECT COUNT() FROM Opportunity")
        totals = fleet.control.stats()["orgs"]
        assert set(totals) == {"0", "1"}
        assert fleet.control_for(1).stats()["total"] == totals["1"]


def _start(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``crm-sandbox ARGS`` as a user runs it; the lines it prints, by their label."""
    command = [
        str(Path(sys.executable).parent / "crm-sandbox"),
        *args,
        "--port",
        "0",
        "--now",
        "2026-03-02T09:00:00Z",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    printed: dict[str, str] = {}
    assert server.stdout is not None
    for line in server.stdout:
        if m := re.search(r"sandbox on (\S+)", line):
            printed["url"] = m.group(1)
        if m := re.match(r"\s+([^:]+?):\s+(\S+)", line):
            printed[m.group(1).strip()] = m.group(2)
        if "introspection" in line:
            break
    return server, printed


def _stop(server: subprocess.Popen[str]) -> None:
    if server.stdout is not None:
        server.stdout.close()
    server.terminate()
    assert server.wait(60) == 0


def test_the_hubspot_command_serves_portals_and_lists_their_tokens() -> None:
    """``crm-sandbox hubspot --portals 4``: the printed tokens and the listing reach four portals."""
    server, printed = _start(["hubspot", "--portals", "4", "--deals", "6", "--no-rate-limits"])
    try:
        listing = requests.get(f"{printed['url']}/__sandbox__/portals", timeout=10).json()["portals"]
        assert len(listing) == 4
        assert printed["portal 1 access token"] == listing[1]["access_token"]
        for portal in listing:
            assert len(deal_names(printed["url"], portal["access_token"])) == 6
    finally:
        _stop(server)


def test_one_token_for_many_portals_is_a_usage_error() -> None:
    command = [str(Path(sys.executable).parent / "crm-sandbox"), "hubspot", "--portals", "2", "--token", "t"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "with --portals each has its own" in done.stderr


def test_the_salesforce_command_serves_orgs_one_login_per_username() -> None:
    """``crm-sandbox salesforce --orgs 3``: the printed connected app logs in to org 2 by its username."""
    server, printed = _start(["salesforce", "--orgs", "3", "--deals", "5"])
    try:
        with trusted_session(printed["CA file (trust it)"]) as session:
            listing = session.get(f"{printed['url']}/__sandbox__/orgs", timeout=10).json()["orgs"]
        assert listing[0]["username"] == printed["usernames"]
        with login_session(printed["CA file (trust it)"], printed["url"], "login.salesforce.com") as session:
            sf = Salesforce(
                username=listing[2]["username"],
                consumer_key=printed["consumer key (JWT)"],
                privatekey_file=printed["private key (JWT)"],
                session=session,
            )
            assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 5
            assert sf.session_id[:15] == listing[2]["org_id"][:15]
    finally:
        _stop(server)
