"""429 storms on both CRMs: cycles end with the CRM state of a clean run, no duplicate, honest waits.

The sandboxes start a storm on 5% of requests, each lasting 8 requests (HubSpot: 429
``TEN_SECONDLY_ROLLING``; Salesforce: 403 ``REQUEST_LIMIT_EXCEEDED`` "ConcurrentPerOrgLongTxn", its
concurrency limit). The worker is the real ``followup run --once`` command in its own process, on real
time; the sandboxes' clocks start at the same minute. Two profiles per CRM:

* the default allowance for rate limits outlasts a storm: the first cycle completes;
* ``rate_limit_attempts: 6`` makes every storm end the cycle ``retry_later``: each run keeps what the ones
  before stored and applied (the full pull resumes, applied batches stay applied), until one completes.

Either way the CRM ends as after a run without faults, and every task key exists once. The waits are
checked against the log's own timestamps: between two consecutive attempts of one call the log shows the
wait it announced and nothing more (no hidden sleep: before the fix a HubSpot 429 also paused the rate
limiter for the 10-second window while the log announced the capped 0.05 s). Nothing asserts how long a
cycle takes.

Before the fixes: HubSpot cycles ended ``retry_later`` at every storm (8 > 6 attempts) and an interrupted
first pull started over each run; Salesforce treated its concurrency limit as a spent daily budget.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.faults import FaultConfig

from store import StateStore
from tests.chaos.workers import REPO

pytestmark = pytest.mark.slow

POLICY = REPO / "config" / "policies"
# Both sandboxes of a CRM hold the same dataset, drawn as of this minute; their clocks tick from it.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# The fault sequences' seeds put a storm into each CRM's first cycle (Salesforce's takes only ~20 calls).
STORMS = {
    "hubspot": FaultConfig(rate_limit_storm=0.05, rate_limit_burst=8, seed=17),
    "salesforce": FaultConfig(rate_limit_storm=0.05, rate_limit_burst=8, seed=42),
}
DEALS = 30
FAST_RETRY = "{attempts: 4, initial_wait: 0.01, max_wait: 0.05, jitter_seed: 1%s}"
MAX_RUNS = 25  # a liveness bound for the resuming profile, far above what it needs


@dataclass
class Run:
    returncode: int
    events: list[dict[str, Any]]
    output: str


@dataclass
class World:
    """One sandbox, a settings file reaching it, and how to run the worker against it."""

    crm: str
    sandbox: Any
    settings: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self) -> Run:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from cli import main; main()",
                "run",
                "--once",
                "--settings",
                str(self.settings),
            ],
            cwd=REPO,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = done.stdout + done.stderr
        events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        return Run(done.returncode, events, output)

    def runs(self) -> list[tuple[str, dict[str, int]]]:
        url = f"sqlite:///{self.settings.parent / 'state.sqlite'}"
        store = StateStore(url)
        try:
            return [(r.status, dict(r.counts)) for r in reversed(store.runs("demo", limit=100))]
        finally:
            store.close()

    def state(self) -> dict[str, Any]:
        self.sandbox.control.set_faults(None)  # read the CRM as a rep would, without storms
        return hubspot_state(self.sandbox) if self.crm == "hubspot" else salesforce_state(self.sandbox)


def hubspot_settings(folder: Path, hs: Any, retry_extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{folder / 'state.sqlite'}'}}\n"
        "logging: {level: info, format: json}\n"
        "accounts:\n"
        "  demo:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        "    apply_batch_size: 10\n"
        "    hubspot:\n"
        f"      host: '{hs.base_url}'\n"
        "      access_token_env: CHAOS_STORM_TOKEN\n"
        "      tier: enterprise\n"
        "      deals_per_batch: 10\n"  # a full pull of three batches, so an interrupted one can resume
        "      search_per_second: 1000\n"  # the sandbox's own limits are off: only storms refuse calls
        "      ten_second_limit: 100000\n"
        f"      retry: {FAST_RETRY % retry_extra}\n",
        encoding="utf-8",
    )
    return path


def salesforce_settings(folder: Path, sf: Any, retry_extra: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{folder / 'state.sqlite'}'}}\n"
        "logging: {level: info, format: json}\n"
        "accounts:\n"
        "  demo:\n"
        "    crm: salesforce\n"
        f"    policy: {POLICY}\n"
        "    apply_batch_size: 10\n"
        "    salesforce:\n"
        f"      instance_url: '{sf.instance_url}'\n"
        f"      login_url: '{sf.instance_url}'\n"
        f"      ca_file: '{sf.ca_file}'\n"
        f"      retry: {FAST_RETRY % retry_extra}\n"
        "      auth:\n"
        "        kind: jwt_bearer\n"
        f"        consumer_key: '{sf.consumer_key}'\n"
        f"        username: '{sf.username}'\n"
        f"        private_key_file: '{sf.private_key_file}'\n",
        encoding="utf-8",
    )
    return path


def hubspot_state(hs: Any) -> dict[str, Any]:
    """Our tasks by key and status, and each deal's stage and follow-up state, as the SDK reads them."""
    from hubspot import HubSpot

    from tests.e2e.conftest import all_records, task_keys

    api = HubSpot(access_token=hs.access_token, host=hs.base_url)
    deals = {
        d.id: (d.properties.get("dealstage"), d.properties.get("followup_state"))
        for d in all_records(api.crm.deals.basic_api, ["dealstage", "followup_state"])
    }
    return {"tasks": task_keys(hs, with_status=True), "deals": deals}


def salesforce_state(sf: Any) -> dict[str, Any]:
    """Our Tasks by key and status, each opportunity's stage, the campaign members, via simple-salesforce."""
    import requests
    from simple_salesforce.api import Salesforce

    session = requests.Session()
    session.verify = str(sf.ca_file)
    session.trust_env = False
    api = Salesforce(instance_url=sf.instance_url, session_id=sf.org.issue_token(), session=session)
    tasks = Counter(
        f"{row['Followup_Key__c']}:{row['Status']}"
        for row in api.query_all("SELECT Followup_Key__c, Status FROM Task WHERE Followup_Key__c != null")[
            "records"
        ]
    )
    deals = {
        row["Id"]: row["StageName"]
        for row in api.query_all("SELECT Id, StageName FROM Opportunity")["records"]
    }
    members = sorted(
        (row["CampaignId"], row["ContactId"])
        for row in api.query_all("SELECT CampaignId, ContactId FROM CampaignMember")["records"]
    )
    session.close()
    return {"tasks": tasks, "deals": deals, "members": members}


@contextmanager
def world(crm: str, folder: Path, faults: FaultConfig | None, retry_extra: str = "") -> Iterator[World]:
    """A sandbox of ``crm`` (storms from its first request when ``faults``) and a worker's settings."""
    if crm == "hubspot":
        from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox

        limits = RateLimitConfig.off()
        with running_hubspot_sandbox(seed=13, deals=DEALS, now=NOW, faults=faults, rate_limits=limits) as hs:
            settings = hubspot_settings(folder, hs, retry_extra)
            yield World("hubspot", hs, settings, {"CHAOS_STORM_TOKEN": hs.access_token})
        return
    from crm_sandbox.salesforce import running_salesforce_sandbox

    with running_salesforce_sandbox(seed=13, deals=DEALS, now=NOW, faults=faults) as sf:
        yield World("salesforce", sf, salesforce_settings(folder, sf, retry_extra))


def until_settled(w: World) -> list[Run]:
    """``followup run --once`` again and again, as a scheduler would, until a cycle completes with nothing
    new to do (a first cycle's stage changes can make a second cycle close tasks: run until quiet)."""
    runs: list[Run] = []
    for _ in range(MAX_RUNS):
        run = w.run()
        runs.append(run)
        assert "Traceback" not in run.output, run.output[-4000:]
        assert run.returncode in (0, 1), run.output[-4000:]
        finished = [e for e in run.events if e["event"] == "cycle_finished"]
        assert len(finished) == 1, run.output[-4000:]
        assert finished[0]["status"] in ("ok", "retry_later"), finished[0]
        if run.returncode == 0 and finished[0]["counts"].get("new", 0) == 0:
            return runs
    raise AssertionError(f"no quiet cycle after {MAX_RUNS} runs")


def timestamp(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def assert_waits_are_the_logged_ones(runs: list[Run]) -> int:
    """Between two consecutive attempts of one call, the log's clock shows the announced wait, no more.

    Consecutive ``crm_retry_scheduled`` lines whose attempt numbers follow each other belong to one call;
    the gap between them is the first one's wait plus one request (milliseconds against a local sandbox).
    Returns how many waits were measured.
    """
    measured = 0
    for run in runs:
        retries = [e for e in run.events if e["event"] == "crm_retry_scheduled"]
        for before, after in itertools.pairwise(retries):
            if after["attempt"] != before["attempt"] + 1:
                continue
            gap = (timestamp(after) - timestamp(before)).total_seconds()
            assert before["wait_s"] - 0.002 <= gap < before["wait_s"] + 0.5, (before, after)
            measured += 1
    return measured


@pytest.fixture(scope="module", params=["hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def clean(crm: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The CRM after cycles without any fault: what every stormy run must end with."""
    with world(crm, tmp_path_factory.mktemp(f"clean-{crm}"), None) as w:
        runs = until_settled(w)
        assert runs[0].returncode == 0
        return w.state()


def test_a_storm_is_ridden_out_within_the_cycle(crm: str, clean: dict[str, Any], tmp_path: Path) -> None:
    """With the default allowance for rate limits, the first cycle completes through every storm."""
    with world(crm, tmp_path, STORMS[crm]) as w:
        runs = until_settled(w)
        faults = w.sandbox.control.stats()["faults"]["rate_limited"]
        state = w.state()
    assert runs[0].returncode == 0, runs[0].output[-4000:]
    assert faults >= 8
    assert assert_waits_are_the_logged_ones(runs[:1]) >= 7  # a whole storm was waited out in cycle one
    reasons = {e["reason"] for r in runs for e in r.events if e["event"] == "crm_retry_scheduled"}
    assert reasons == ({"rate_limit_window"} if crm == "hubspot" else {"backoff"})
    assert max(state["tasks"].values()) == 1, "a task was written twice"
    assert state == clean


def test_a_storm_that_outlasts_the_retries_resumes_next_run(
    crm: str, clean: dict[str, Any], tmp_path: Path
) -> None:
    """Every storm ends the cycle (rate_limit_attempts: 6 < 8); each run keeps what the ones before did.

    The storms last until a cycle completes (then they stop, so that the test ends): the runs before it
    ended retry_later, each resuming from what the one before had stored and applied.
    """
    with world(crm, tmp_path, STORMS[crm], retry_extra=", rate_limit_attempts: 6") as w:
        stormy: list[Run] = []
        while not stormy or stormy[-1].returncode != 0:
            assert len(stormy) < MAX_RUNS, "no cycle completed"
            stormy.append(w.run())
            assert "Traceback" not in stormy[-1].output, stormy[-1].output[-4000:]
        w.sandbox.control.set_faults(None)
        calm = until_settled(w)
        history = w.runs()
        state = w.state()
    statuses = [status for status, _ in history]
    assert statuses[: len(stormy)] == ["retry_later"] * (len(stormy) - 1) + ["ok"]
    assert len(stormy) >= 2  # at least one storm outlasted the retries
    assert [r.returncode for r in stormy] == [1] * (len(stormy) - 1) + [0]
    assert assert_waits_are_the_logged_ones(stormy) >= 5
    assert all(counts.get("already_applied", 0) == 0 for _, counts in history)  # nothing applied twice
    assert max(state["tasks"].values()) == 1, "a task was written twice"
    assert state == clean
    assert calm[-1].returncode == 0
    if crm == "hubspot":  # its full pull resumes after the last batch stored (Salesforce's starts over)
        pulls = [e for r in stormy for e in r.events if e["event"] == "pull_started"]
        assert any(e["resumed"] for e in pulls)
        assert sum(counts.get("pulled", 0) for _, counts in history[: len(stormy)]) < 2 * DEALS
