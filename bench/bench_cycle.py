"""The whole worker cycle on both CRMs: API calls against their minimum, wall and CPU time, peak RSS.

For each CRM and size, in a fresh process: the sandbox seeded with ``--deals`` deals (seed 7) in a child
process on real time, the worker reaching it through ``worker.run_once`` (the real connector and official
client, the shipped policy ``config/policies``, the default settings but HubSpot ``tier: enterprise`` and
``search_per_second: 1000``, SQLite state on disk), three cycles:

1. **first (full)**: pull everything, evaluate, write every action;
2. **next**: right after it, nobody else changing anything (what our own writes cost the next cycle);
3. **1% incremental**: after 1% of the mirrored deals changed behind the worker's back (half a field or
   stage edit, half a newly logged call), through the CRM's API as another integration.

Per cycle: deals pulled (and restamped), actions written, API calls by endpoint (the connector's count),
the write minimum, wall time, the worker process's CPU time, its peak RSS so far (``ru_maxrss``) and the
machine's 1-minute load average at the end.

**Write minimum** (from the actions the cycle applied, read from the ledger): HubSpot, for each kind the
CRM's batch limit: ``ceil(task creates / 100)``; task updates and closes: one batch read of the tasks plus
one batch update per 100; deal writes: one batch read (the optimistic check) plus one batch update per 100
distinct deals; nurture: one membership call per list. Salesforce, Composite-aware (a Composite call
carries at most 5 queries and sObject Collections together): the reads before writing (``ceil(deals /
500)`` stamp queries, ``ceil(task closes / 500)`` open-Task queries, ``ceil(members / 500)``
membership queries, members being the campaign members the nurture actions wrote, one per contact) in
``ceil(reads / 5)`` calls, then the collections of 200 records (creates: Tasks and members; updates: Task
closes and updates plus distinct opportunities) and the ``ceil(deals / 500)`` read-back queries after them
in ``ceil((collections + read-back) / 5)`` calls.

**Whole first cycle minimum** = the pull's minimum + the write minimum. The pull's minimum is the
connector benchmarks' for the same seed and size (``PULL_MINIMUM``: HubSpot 10,000 1,428 and 100,000
14,273, their minimums without the 1% task creates those benchmarks add; Salesforce 10,000 20 and 100,000
191, Composite-aware; see their sections); sizes they did not measure show no ratio.

**HubSpot Starter** (``--hubspot-plan starter``, HubSpot only): the sandbox enforces the Starter limits
(``RateLimitConfig.tier("starter")``: 100 requests per rolling 10 s, search 5 per second outside that window,
250,000 a day) and the worker runs with ``tier: starter`` and otherwise default rate-limit settings (its
client-side limiter: ``ten_second_headroom``, ``search_per_second``), instead of rate limits off on both
sides. The first cycle's row then gives its wall time against ``calls / 10`` seconds (calls ÷ 100 per
10 s, the issue's yardstick) and against ``non-search calls / 10`` (searches are outside the window), and
the 429 answers the sandbox sent during the run.

    .venv/bin/python -m bench.bench_cycle [--deals 10000[,100000]] [--crm hubspot,salesforce] [--no-write]
        [--apply-batch-size N] [--hubspot-plan starter]

Each run's rows are recorded per CRM and size in ``bench/results/whole_cycle.json`` (with the command, the
time and the machine) and the "Whole worker cycle" section of docs/benchmarks.md is rendered from every
recorded run, so ``--crm hubspot --deals 100000`` replaces only the HubSpot 100,000 rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    FOLLOWUP,
    ROOT,
    machine,
    salesforce_settings,
    serve_salesforce_sandbox,
    start_hubspot_sandbox,
    write_section,
)

SECTION = "## Whole worker cycle"
RESULTS = ROOT / "bench" / "results" / "whole_cycle.json"
POLICY = Path(__file__).resolve().parent.parent / "config" / "policies"
DEAL_WRITES = ("change_stage", "set_deal_fields")
TASK_WRITES = ("close_task", "update_task")
NURTURE = ("enrol_in_nurture", "reactivate_from_nurture")


# The pull's own minimum by (CRM, deals), from the connector benchmarks (same seed 7): see the docstring.
PULL_MINIMUM = {
    ("hubspot", 10_000): 1_428,
    ("hubspot", 100_000): 14_273,
    ("salesforce", 10_000): 20,
    ("salesforce", 100_000): 191,
}
SEARCHES = ".search"  # the HubSpot connector's endpoint names for the search calls end so
STARTER = "HubSpot Starter"  # the CRM label (and results key) of a --hubspot-plan starter run


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def write_minimum(crm: str, applied: list[tuple[str, str, int]]) -> int:
    """The fewest write calls (pre-write checks included) for the applied ``(kind, deal id, CRM records)``
    (records: the ids the write answered; a nurture action writes one membership per contact)."""
    kinds = Counter(kind for kind, _, _ in applied)
    deals = len({deal for kind, deal, _ in applied if kind in DEAL_WRITES})
    tasks = sum(kinds[k] for k in TASK_WRITES)
    nurture = sum(kinds[k] for k in NURTURE)
    if crm == "hubspot":
        return (
            math.ceil(kinds["create_task"] / 100)
            + 2 * math.ceil(tasks / 100)
            + 2 * math.ceil(deals / 100)
            + (1 if nurture else 0)
        )
    members = sum(max(1, records) for kind, _, records in applied if kind in NURTURE)
    stamps = math.ceil(deals / 500)
    reads = stamps + math.ceil(kinds["close_task"] / 500) + math.ceil(members / 500)
    collections = math.ceil((kinds["create_task"] + members) / 200) + math.ceil((tasks + deals) / 200)
    return math.ceil(reads / 5) + math.ceil((collections + stamps) / 5)


class Worker:
    """The worker under measurement, with its settings, store and a way to change the CRM behind it."""

    def __init__(
        self, crm: str, settings: Path, store_url: str, change: Any, refused: Any = lambda: 0
    ) -> None:
        self.crm = crm
        self.settings = settings
        self.store_url = store_url
        self.change = change
        self.refused = refused  # 429 answers the sandbox sent so far

    def applied(self) -> dict[str, tuple[str, str, int]]:
        from store import StateStore

        store = StateStore(self.store_url)
        try:
            return {
                e.key: (e.kind, e.deal_id, len(e.crm_ids))
                for e in store.ledger("demo")
                if e.status == "applied"
            }
        finally:
            store.close()

    def mirrored_ids(self) -> list[str]:
        from store import StateStore

        store = StateStore(self.store_url)
        try:
            return sorted(d.id for chunk in store.iter_mirror("demo", 2000) for d in chunk)
        finally:
            store.close()

    def measure(self, label: str) -> dict[str, Any]:
        import worker

        before = self.applied()
        refused = self.refused()
        started, cpu = time.perf_counter(), time.process_time()
        (result,) = worker.run_once(self.settings)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = self.applied()
        new = [pair for key, pair in after.items() if key not in before]
        return {
            "cycle": label,
            "status": result.status,
            "pulled": result.counts["pulled"],
            "restamped": result.counts["restamped"],
            "written": result.counts["applied"],
            "calls": result.api_calls,
            "by_endpoint": dict(sorted(result.api_calls_by_endpoint.items())),
            "write_minimum": write_minimum(self.crm, new),
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_rss_mb": _peak_mb(),
            "load": os.getloadavg()[0],
            "refused_429": self.refused() - refused,
        }

    def three_cycles(self) -> list[dict[str, Any]]:
        rows = [self.measure("first (full)"), self.measure("next")]
        ids = self.mirrored_ids()
        count = max(2, len(ids) // 100)
        chosen = ids[:: max(1, len(ids) // count)][:count]
        self.change(chosen)
        row = self.measure("1% incremental")
        row["changed"] = len(chosen)
        rows.append(row)
        return rows


class _LimiterWaits(logging.Handler):
    """Sums the HubSpot limiter's waits by reason (its ``crm_throttled`` debug events), kept out of the
    bench's log: with the waits next to the wall time, a Starter run shows whether the window or the
    machine set its pace."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @classmethod
    def attach(cls) -> _LimiterWaits:
        handler = cls()
        limiter_log = logging.getLogger("connectors.hubspot.limits")
        limiter_log.setLevel(logging.DEBUG)
        limiter_log.propagate = False
        limiter_log.addHandler(handler)
        return handler

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg
        if isinstance(event, dict) and event.get("event") == "crm_throttled":
            self.seconds[str(event.get("reason"))] += float(event.get("wait_s") or 0.0)


def _hubspot(deals: int, out: Any) -> None:
    from crm_sandbox.api_client import SandboxApi
    from crm_sandbox.hubspot import RateLimitConfig

    import worker

    worker.configure_logging("error", "json")
    starter = os.environ.get("BENCH_CYCLE_HUBSPOT_PLAN") == "starter"
    limits = RateLimitConfig.tier("starter") if starter else RateLimitConfig.off()
    server, parent, base_url, token = start_hubspot_sandbox(seed=7, deals=deals, rate_limits=limits)
    os.environ["BENCH_HUBSPOT_TOKEN"] = token
    folder = Path(tempfile.mkdtemp(prefix="bench-cycle-hubspot-"))
    store_url = f"sqlite:///{folder / 'state.sqlite'}"
    settings = folder / "settings.yaml"
    settings.write_text(
        f"store: {{url: '{store_url}'}}\n"
        "accounts:\n  demo:\n    crm: hubspot\n"
        f"    policy: '{POLICY}'\n" + os.environ.get("BENCH_CYCLE_EXTRA", "") + "    hubspot:\n"
        f"      host: '{base_url}'\n      access_token_env: BENCH_HUBSPOT_TOKEN\n"
        + ("      tier: starter\n" if starter else "      tier: enterprise\n      search_per_second: 1000\n"),
        encoding="utf-8",
    )

    def change(deal_ids: list[str]) -> None:
        api = SandboxApi(base_url, token)
        half = len(deal_ids) // 2
        edits = [{"id": d, "properties": {"amount": "12345"}} for d in deal_ids[:half]]
        for start in range(0, len(edits), 100):
            api.call("POST", "/crm/v3/objects/deals/batch/update", {"inputs": edits[start : start + 100]})
        now = datetime.now(UTC).isoformat()
        calls = [
            {
                "properties": {
                    "hs_timestamp": now,
                    "hs_call_direction": "INBOUND",
                    "hs_call_status": "COMPLETED",
                },
                "associations": [
                    {
                        "to": {"id": d},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 206}],
                    }
                ],
            }
            for d in deal_ids[half:]
        ]
        for start in range(0, len(calls), 100):
            api.call("POST", "/crm/v3/objects/calls/batch/create", {"inputs": calls[start : start + 100]})
        api.close()

    def refused() -> int:
        parent.send("stats")
        return int(parent.recv()["statuses"].get("429", 0))

    waits = _LimiterWaits.attach() if starter else None

    try:
        measured = Worker("hubspot", settings, store_url, change, refused)
        rows = [measured.measure("first (full)")] if starter else measured.three_cycles()
        if waits is not None:
            rows[0]["limiter_waits_s"] = dict(waits.seconds)
    finally:
        parent.send("stop")
        server.join(timeout=10)
    out.send(rows)


def _salesforce(deals: int, out: Any) -> None:
    from crm_sandbox.api_client import SandboxApi

    import worker

    worker.configure_logging("error", "json")
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=serve_salesforce_sandbox,
        args=(child,),
        kwargs={"seed": 7, "deals": deals, "daily_api_limit": 10_000_000},
        daemon=True,
    )
    server.start()
    instance_url, ca_file, consumer_key, username, key_file = parent.recv()
    folder = Path(tempfile.mkdtemp(prefix="bench-cycle-salesforce-"))
    store_url = f"sqlite:///{folder / 'state.sqlite'}"
    settings = folder / "settings.yaml"
    credentials = (instance_url, ca_file, consumer_key, username, key_file)
    extra = os.environ.get("BENCH_CYCLE_EXTRA", "")
    settings.write_text(salesforce_settings(store_url, credentials, POLICY, extra=extra), encoding="utf-8")
    subprocess.run([FOLLOWUP, "setup", "salesforce", "--settings", str(settings)], check=False)

    def change(deal_ids: list[str]) -> None:
        parent.send("token")
        api = SandboxApi(instance_url, parent.recv(), verify=ca_file)
        path = "/services/data/v62.0/composite/sobjects"
        half = len(deal_ids) // 2
        edits = [
            {"attributes": {"type": "Opportunity"}, "id": d, "NextStep": "Edited for the benchmark"}
            for d in deal_ids[:half]
        ]
        calls = [
            {
                "attributes": {"type": "Task"},
                "WhatId": d,
                "Subject": "Call",
                "Status": "Completed",
                "TaskSubtype": "Call",
                "CallType": "Inbound",
                "CallDisposition": "Connected",
            }
            for d in deal_ids[half:]
        ]
        for start in range(0, len(edits), 200):
            api.call("PATCH", path, {"allOrNone": False, "records": edits[start : start + 200]})
        for start in range(0, len(calls), 200):
            api.call("POST", path, {"allOrNone": False, "records": calls[start : start + 200]})
        api.close()

    try:
        rows = Worker("salesforce", settings, store_url, change).three_cycles()
    finally:
        parent.send("stop")
        server.join(timeout=30)
    out.send(rows)


def _in_fresh_process(target: Any, deals: int) -> list[dict[str, Any]]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(deals, child))
    process.start()
    rows: list[dict[str, Any]] = parent.recv()
    process.join()
    return rows


Run = dict[str, Any]  # {"crm", "deals", "command", "measured", "machine", "rows"}


def record(runs: list[Run], path: Path = RESULTS) -> list[Run]:
    """Store ``runs`` in ``path``, each replacing the recorded run of the same CRM and size; all runs."""
    recorded: list[Run] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    fresh = {(r["crm"], r["deals"]) for r in runs}
    kept = [r for r in recorded if (r["crm"], r["deals"]) not in fresh]
    merged = sorted([*kept, *runs], key=lambda r: (r["deals"], r["crm"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
    return merged


def render(runs: list[Run]) -> str:
    lines = [
        SECTION,
        "",
        "Command: `python -m bench.bench_cycle --deals N --crm C` (each run below names its own).",
        "Each CRM and size in a fresh process; the sandbox in its own process (rate limits off), the",
        "worker through `worker.run_once` with default settings unless the run's command says otherwise,",
        "except HubSpot's `tier: enterprise` (190 requests per 10 s: the limiter paces the wall time) and",
        "`search_per_second: 1000`. CPU and peak RSS are the worker process's (peak so far, so the later",
        "cycles show the first one's peak unless they pass it); load is the machine's 1-minute load average",
        "at the end of the cycle (2 cores shared with others).",
        "",
        "| CRM | deals | cycle | deals pulled (restamped) | actions written | API calls | write minimum "
        "| whole minimum (ratio) | wall | CPU | peak RSS | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    details, provenance, starter = [], [], []
    for run in runs:
        crm, deals = run["crm"], run["deals"]
        provenance.append(f"- {crm} {deals:,}: `{run['command']}`, {run['machine']}, {run['measured']} UTC")
        for row in run["rows"]:
            changed = f", {row['changed']:,} changed" if "changed" in row else ""
            pull = PULL_MINIMUM.get((crm.split()[0].lower(), deals))
            whole = "-"
            if pull is not None and row["cycle"] == "first (full)":
                minimum = pull + row["write_minimum"]
                whole = f"{minimum:,} ({row['calls'] / minimum:.2f}x)"
            lines.append(
                f"| {crm} | {deals:,} | {row['cycle']}{changed} | {row['pulled']:,} ({row['restamped']:,}) "
                f"| {row['written']:,} | {row['calls']:,} | {row['write_minimum']:,} | {whole} "
                f"| {row['wall_s']:.1f} s | {row['cpu_s']:.1f} s | {row['peak_rss_mb']:.0f} MB "
                f"| {row['load']:.1f} |"
            )
            by = ", ".join(f"{k} {v:,}" for k, v in row["by_endpoint"].items())
            details.append(f"- {crm} {deals:,}, {row['cycle']}: {by}")
            if crm == STARTER:
                starter.append(_starter_row(deals, row))
    if starter:
        lines += [
            "",
            "HubSpot Starter, measured (`--hubspot-plan starter`: the sandbox enforcing 100 requests per",
            "10 s and search 5 per second, the worker with `tier: starter`): the first cycle's wall time",
            "against calls ÷ 100 per 10 s, and against the non-search calls alone (searches are outside",
            "the window).",
            "",
            "The limiter's waits are what it slept, by reason (`crm_throttled`): when they are short and",
            "the ratio high, the window did not set the pace; the calls' round trips and the CPU between",
            "them (the worker's and the sandbox's, on a shared machine: load) did.",
            "",
            "| deals | API calls (searches) | wall | calls ÷ limit | ratio | non-search ÷ limit | ratio "
            "| 429s sent | limiter waits | load |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
            *starter,
        ]
    return (
        "\n".join(
            [
                *lines,
                "",
                "Runs:",
                "",
                *provenance,
                "",
                "Calls by endpoint (the connector's names):",
                "",
                *details,
            ]
        )
        + "\n"
    )


def _starter_row(deals: int, row: dict[str, Any]) -> str:
    searches = sum(n for name, n in row["by_endpoint"].items() if name.endswith(SEARCHES))
    bound, window = row["calls"] / 10, (row["calls"] - searches) / 10
    waits = row.get("limiter_waits_s") or {}
    waited = ", ".join(f"{reason} {seconds:.1f} s" for reason, seconds in sorted(waits.items())) or "none"
    return (
        f"| {deals:,} | {row['calls']:,} ({searches:,}) | {row['wall_s']:.1f} s | {bound:.1f} s "
        f"| {row['wall_s'] / bound:.3f}x | {window:.1f} s | {row['wall_s'] / window:.3f}x "
        f"| {row.get('refused_429', 0):,} | {waited} | {row['load']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", default="10000", help="sizes, comma-separated")
    parser.add_argument("--crm", default="hubspot,salesforce")
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs/benchmarks.md")
    parser.add_argument("--apply-batch-size", type=int, help="instead of the default setting")
    parser.add_argument(
        "--hubspot-plan",
        choices=["starter"],
        help="HubSpot only: the sandbox enforcing the plan's limits, the worker set for them (first cycle)",
    )
    args = parser.parse_args()
    if args.hubspot_plan:  # read by the fresh process
        os.environ["BENCH_CYCLE_HUBSPOT_PLAN"] = args.hubspot_plan
        if args.crm != "hubspot":
            parser.error("--hubspot-plan needs --crm hubspot")
    if args.apply_batch_size:  # read by the fresh processes
        os.environ["BENCH_CYCLE_EXTRA"] = f"    apply_batch_size: {args.apply_batch_size}\n"
    targets = {"hubspot": ("HubSpot", _hubspot), "salesforce": ("Salesforce", _salesforce)}
    command = "python -m bench.bench_cycle " + " ".join(sys.argv[1:])
    runs: list[Run] = []
    for size in (int(s) for s in args.deals.split(",") if s):
        for crm in args.crm.split(","):
            label, target = targets[crm.strip()]
            label = STARTER if args.hubspot_plan else label
            rows = _in_fresh_process(target, size)
            measured = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
            runs.append(
                {
                    "crm": label,
                    "deals": size,
                    "command": command,
                    "measured": measured,
                    "machine": machine().split(";")[0],
                    "rows": rows,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
    if args.no_write:
        print(render(runs))
        return
    text = render(record(runs))
    print(text)
    write_section(SECTION, text)


if __name__ == "__main__":
    main()
