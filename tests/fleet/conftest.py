"""A fleet to test: HubSpot portals and Salesforce orgs in two multi-account sandboxes, one PostgreSQL store,
one settings file every worker reads, and real ``followup serve`` processes.

Everything is real: the sandboxes are HTTP(S) servers reached through the official clients, the workers
are separate processes (``tests/chaos/workers.py``), the store is a fresh PostgreSQL database (the suite
is skipped without ``FOLLOWUP_TEST_POSTGRES_URL``; CI always sets it). Clocks are the machines' own.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from store import StateStore
from store.database import loads
from store.ledger import LedgerEntry
from store.schema import runs
from tests.chaos.workers import REPO, Finished, Started, start_together
from tests.e2e.conftest import task_keys

POLICY = REPO / "config" / "policies"
POSTGRES_URL_ENV = "FOLLOWUP_TEST_POSTGRES_URL"
DEALS = 12  # per account: a first cycle writes about 20 actions in two or three batches


@dataclass(frozen=True)
class Run:
    account: str
    holder: str
    status: str
    started_at: float  # epoch seconds
    finished_at: float | None
    due_at: float | None


@pytest.fixture
def store_url() -> Iterator[str]:
    """A new PostgreSQL database for one test."""
    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_URL_ENV} to run the fleet tests (CI does)")
    from sqlalchemy import create_engine, make_url, text

    name = f"followup_fleet_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Fleet:
    """The sandboxes, the settings every worker reads, and views of the store and the CRMs."""

    folder: Path
    settings: Path
    store_url: str
    hubspot: Any  # crm_sandbox.hubspot.fleet.HubSpotFleet
    salesforce: Any  # crm_sandbox.salesforce.fleet.SalesforceFleet
    accounts: dict[str, tuple[str, int]]  # the good ones: name -> (crm, portal or org number)
    broken: list[str] = field(default_factory=list)
    batches: int = 0

    def start(self, count: int, *, envs: list[dict[str, str]] | None = None) -> list[Started]:
        """``count`` ``followup serve`` processes on the settings, released together."""
        self.batches += 1
        return start_together(
            [["serve", "--settings", str(self.settings)]] * count,
            self.folder / f"workers-{self.batches}",
            envs=envs,
        )

    def store(self) -> StateStore:
        return StateStore(self.store_url)

    def runs(self) -> list[Run]:
        store = self.store()
        try:
            with store.engine.connect() as connection:
                rows = connection.execute(runs.select().order_by(runs.c.started_at)).all()
        finally:
            store.close()
        return [
            Run(
                r.account,
                r.holder,
                r.status,
                r.started_at.timestamp(),
                r.finished_at.timestamp() if r.finished_at else None,
                r.due_at.timestamp() if r.due_at else None,
            )
            for r in rows
        ]

    def ok_cycles(self) -> Counter[str]:
        return Counter(r.account for r in self.runs() if r.status == "ok")

    def wait_until(
        self, done: Callable[[], bool], what: str, workers: list[Started], limit: float = 240
    ) -> None:
        """Poll until ``done()`` (a liveness limit, not a timing assertion); fail early if a worker died."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if done():
                return
            dead = [s for s in workers if s.process.poll() is not None]
            if dead:
                raise AssertionError(
                    f"a worker exited while waiting for {what}: {dead[0].log_lines()[-3000:]}"
                )
            time.sleep(0.25)
        raise AssertionError(f"gave up waiting for {what}")

    def wait_for_holder(self, worker: Started, workers: list[Started]) -> str:
        """Wait until ``worker`` holds at least one account's lease (a cycle in flight); its holder id."""
        self.wait_until(
            lambda: any(e["event"] == "fleet_worker_started" for e in events(worker)), "start", workers
        )
        holder = holder_of(worker)

        def holds() -> bool:
            store = self.store()
            try:
                return any(s.holder == holder for s in store.account_statuses())
            finally:
                store.close()

        self.wait_until(holds, f"{holder} holding an account", workers)
        return holder

    def crm_task_keys(self, account: str) -> Counter[str]:
        """The idempotency keys of the tasks crm-followup wrote in that account's CRM (each should be 1)."""
        crm, number = self.accounts[account]
        if crm == "hubspot":
            portal = SimpleNamespace(access_token=self.hubspot.tokens[number], base_url=self.hubspot.base_url)
            return task_keys(portal)
        import requests
        from simple_salesforce.api import Salesforce

        session = requests.Session()
        session.verify = str(self.salesforce.ca_file)
        session.trust_env = False
        org = self.salesforce.server.tenant(number)
        api = Salesforce(
            instance_url=self.salesforce.instance_url, session_id=org.issue_token(), session=session
        )
        rows = api.query_all("SELECT Followup_Key__c FROM Task WHERE Followup_Key__c != null")["records"]
        return Counter(row["Followup_Key__c"] for row in rows)

    def ledger(self, account: str) -> list[LedgerEntry]:
        store = self.store()
        try:
            return store.ledger(account)
        finally:
            store.close()

    def status(self) -> dict[str, Any]:
        """``followup status --settings ... --json``, run as a user runs it, parsed."""
        import subprocess
        import sys

        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from cli import main; main()",
                "status",
                "--settings",
                str(self.settings),
                "--json",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        document: dict[str, Any] = json.loads(done.stdout)
        return document


def events(finished: Finished | Started) -> list[dict[str, Any]]:
    text = finished.output if isinstance(finished, Finished) else finished.log_lines()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def metrics_of(worker: Started) -> str:
    """The worker's /metrics page (its port is in its ``worker_started`` line)."""
    port = next(e["metrics_port"] for e in events(worker) if e["event"] == "worker_started")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def holder_of(worker: Started) -> str:
    return str(next(e["holder"] for e in events(worker) if e["event"] == "fleet_worker_started"))


def counts_of(run_counts: str) -> dict[str, int]:
    value: dict[str, int] = loads(run_counts)
    return value


def write_settings(
    folder: Path,
    store_url: str,
    hubspot: Any,
    salesforce: Any,
    *,
    portals: int,
    orgs: int,
    every: str,
    lease: str,
    broken: bool = False,
    max_cycles: int = 4,
    idle_in_transaction_timeout: str = "3s",
) -> Fleet:
    """The settings file of the fleet: ``portals`` HubSpot and ``orgs`` Salesforce accounts (and, with
    ``broken``, one account whose policy does not load and one whose token the CRM refuses).

    The store's ``idle_in_transaction_timeout`` is low (the default is a minute) so that a worker frozen in
    a transaction frees its rows well within the tests' short leases."""
    from crm_sandbox.pipelines import stage_ids_by_name

    secrets = folder / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    retry = "{attempts: 8, initial_wait: 0.05, max_wait: 1, max_total: 60, jitter_seed: 1}"
    lines = [
        f"store: {{url: '{store_url}', idle_in_transaction_timeout: {idle_in_transaction_timeout}}}",
        "metrics: {port: 0}",
        "logging: {level: info, format: json}",
        f"worker: {{max_concurrent_cycles: {max_cycles}, poll_interval: 1s}}",
        "accounts:",
    ]
    accounts: dict[str, tuple[str, int]] = {}

    def common(name: str, crm: str, policy: Path) -> None:
        lines.extend(
            [
                f"  {name}:",
                f"    crm: {crm}",
                f"    policy: {policy}",
                f"    schedule: {{every: {every}}}",
                f"    lease: {lease}",
                "    apply_batch_size: 8",
            ]
        )

    def hubspot_section(token_file: Path) -> None:
        lines.extend(
            [
                "    hubspot:",
                f"      host: '{hubspot.base_url}'",
                f"      access_token_file: '{token_file}'",
                "      tier: enterprise",
                f"      retry: {retry}",
            ]
        )

    for n in range(portals):
        name = f"hs-{n:02d}"
        token = secrets / f"{name}.token"
        token.write_text(hubspot.tokens[n])
        common(name, "hubspot", POLICY)
        hubspot_section(token)
        accounts[name] = ("hubspot", n)
    stage_ids = json.dumps(stage_ids_by_name())
    for n in range(orgs):
        name = f"sf-{n:02d}"
        common(name, "salesforce", POLICY)
        lines.extend(
            [
                "    salesforce:",
                f"      instance_url: '{salesforce.instance_url}'",
                f"      login_url: '{salesforce.instance_url}'",
                f"      ca_file: '{salesforce.ca_file}'",
                f"      retry: {retry}",
                f"      stage_ids: {stage_ids}",
                "      auth:",
                "        kind: jwt_bearer",
                f"        consumer_key: '{salesforce.consumer_key}'",
                f"        username: '{salesforce.usernames[n]}'",
                f"        private_key_file: '{salesforce.private_key_file}'",
            ]
        )
        accounts[name] = ("salesforce", n)
    names: list[str] = []
    if broken:
        bad_policy = folder / "broken-policy.yaml"
        bad_policy.write_text("version: 1\nmode: enforce\nrules: [this is not a policy\n")
        common("broken-policy", "hubspot", bad_policy)
        hubspot_section(secrets / f"hs-{0:02d}.token")
        wrong = secrets / "wrong.token"
        wrong.write_text("pat-na1-not-a-token-of-any-portal")
        common("bad-token", "hubspot", POLICY)
        hubspot_section(wrong)
        names = ["bad-token", "broken-policy"]
    settings = folder / "settings.yaml"
    settings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Fleet(folder, settings, store_url, hubspot, salesforce, accounts, names)


@pytest.fixture
def sandboxes() -> Iterator[tuple[Any, Any]]:
    """15 HubSpot portals and 15 Salesforce orgs of 12 deals each, on the machine's clock."""
    from crm_sandbox.hubspot.fleet import running_hubspot_fleet
    from crm_sandbox.salesforce.fleet import running_salesforce_fleet

    with (
        running_hubspot_fleet(portals=15, deals=DEALS, seed=100) as hubspot,
        running_salesforce_fleet(orgs=15, deals=DEALS, seed=200) as salesforce,
    ):
        yield hubspot, salesforce
