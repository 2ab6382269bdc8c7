"""API calls and wall time of the HubSpot connector: a full cycle and a 1%-changed incremental cycle.

    .venv/bin/python -m bench.bench_hubspot_connector                 # 10,000 and 100,000 deals
    .venv/bin/python -m bench.bench_hubspot_connector --deals 10000   # one size
    .venv/bin/python -m bench.bench_hubspot_connector --write-docs    # also update docs/benchmarks.md

The sandbox runs in a forked child process (so its request handling does not share our GIL), with its rate
limits off; the connector's limiter paces on a simulated clock (its waits are not slept), so wall times are
the connector's and the sandbox's work.

Cycle = read_directory + pull_changes + apply(one CreateTask for each of 1% of the deals).
Incremental = the same after 1% of the deals changed through the SDK: half of them a stage change, half a
new logged call (which does not touch the deal's modified date and must be found through associations).

The theoretical minimum counts, for exactly the data the cycle must read, one call per batch limit:
deals search 200 per page; associations 1,000 ids per call; batch read 100 per call; task create 100 per
call; owners and pipelines one call each; for the incremental cycle one search per object type that can
change (deals, 5 engagement types, contacts) and one archived-deals page. The Starter time is computed
from the call counts, not measured: non-search calls at 100 per 10 s, searches at 4 per second.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sandbox.api_client import SandboxApi
from crm_sandbox.dataset import Dataset, generate
from crm_sandbox.hubspot import RateLimitConfig

from bench.harness import SimulatedTime, serve_hubspot_sandbox, write_section
from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.hubspot.connector import HubSpotConnector
from policies.model import CreateTask, Deal, Explanation, make_key

TYPES = {"call": "calls", "email": "emails", "meeting": "meetings", "note": "notes", "task": "tasks"}
SECTION = "## HubSpot connector"
TOKEN_ENV = "BENCH_HUBSPOT_TOKEN"


@dataclass
class Needs:
    """The data one cycle must read, counted from the dataset."""

    deals: int
    contacts: int
    engagements: Mapping[str, int]


def _needs(dataset: Dataset, deal_ids: set[int], extra_activities: Mapping[str, int] | None = None) -> Needs:
    contacts = {link.contact_id for d in dataset.deals if d.id in deal_ids for link in d.contacts}
    engagements: Counter[str] = Counter()
    for a in dataset.activities:
        if a.deal_id in deal_ids or (a.contact_id is not None and a.contact_id in contacts):
            engagements[TYPES[a.kind.value]] += 1
    for kind, n in (extra_activities or {}).items():
        engagements[kind] += n
    return Needs(len(deal_ids), len(contacts), engagements)


def _aggregate_minimum(needs: Needs) -> int:
    calls = 6 * math.ceil(needs.deals / 1000)  # deal -> contacts, -> 5 engagement types
    calls += math.ceil(needs.contacts / 100) + 5 * math.ceil(needs.contacts / 1000)
    calls += sum(math.ceil(n / 100) for n in needs.engagements.values())
    return calls


def full_minimum(needs: Needs, tasks: int) -> int:
    return 2 + math.ceil(needs.deals / 200) + _aggregate_minimum(needs) + math.ceil(tasks / 100)


def incremental_minimum(needs: Needs, new_engagements: Mapping[str, int], tasks: int) -> int:
    """Counted as if the deal search found every changed deal (no batch read of deals found otherwise)."""
    calls = 2  # owners, pipelines
    calls += max(1, math.ceil(needs.deals / 200)) + 5 + 1 + 1  # deals, engagement types, contacts, archived
    for n in new_engagements.values():
        calls += 2 * math.ceil(n / 1000)  # engagement -> deals, engagement -> contacts
    return calls + _aggregate_minimum(needs) + math.ceil(tasks / 100)


def _connector(base_url: str, token: str) -> HubSpotConnector:
    os.environ[TOKEN_ENV] = token
    options = HubSpotOptions(host=base_url, access_token_env=TOKEN_ENV, activity_lookback_days=3650)
    time_ = SimulatedTime()
    return build_hubspot_connector(
        options, now=lambda: datetime.now(UTC), monotonic=time_.monotonic, sleep=time_.sleep
    )


def _tasks_for(deals, now: datetime) -> list[CreateTask]:
    return [
        CreateTask(
            key=make_key("bench", d.id, now.isoformat()),
            deal_id=d.id,
            rule_id="bench",
            explanation=Explanation("benchmark"),
            owner_id=d.owner_id,
            subject="Follow up",
            body="Benchmark task.",
            due_at=now + timedelta(days=1),
        )
        for d in deals
    ]


def _cycle(connector: HubSpotConnector, cursor, share: float, now: datetime):
    started = time.perf_counter()
    directory = connector.read_directory()
    deals: list[Deal] = []
    last = None
    for batch in connector.pull_changes(directory, cursor):
        deals.extend(batch.deals)
        last = batch.cursor
    chosen = sorted(deals, key=lambda d: int(d.id))
    step = max(1, round(1 / share)) if share < 1 else 1
    actions = _tasks_for(chosen[::step], now)
    outcomes = connector.apply(actions)
    assert all(o.status.value == "applied" for o in outcomes), Counter(o.status.value for o in outcomes)
    return time.perf_counter() - started, deals, last, len(actions)


def _change(
    base_url: str, token: str, dataset: Dataset, share: float
) -> tuple[set[int], set[int], Counter[str]]:
    """Change ``share`` of the deals through the portal's API: half stage changes, half new logged calls."""
    api = SandboxApi(base_url, token)
    ids = sorted(d.id for d in dataset.deals)
    count = max(2, int(len(ids) * share))
    chosen = ids[:: max(1, len(ids) // count)][:count]
    staged, called = set(chosen[: count // 2]), set(chosen[count // 2 :])
    stages = {p.id: [s.id for s in p.stages if not s.is_closed] for p in dataset.pipelines}
    by_id = {d.id: d for d in dataset.deals}
    staged_list = sorted(staged)
    inputs: list[dict[str, Any]]
    for start in range(0, len(staged_list), 100):
        inputs = []
        for deal_id in staged_list[start : start + 100]:
            deal = by_id[deal_id]
            options = [s for s in stages[deal.pipeline_id] if s != deal.stage_id]
            inputs.append({"id": str(deal_id), "properties": {"dealstage": options[deal_id % len(options)]}})
        api.call("POST", "/crm/v3/objects/deals/batch/update", {"inputs": inputs})
    called_list = sorted(called)
    now = datetime.now(UTC).isoformat()
    for start in range(0, len(called_list), 100):
        inputs = [
            {
                "properties": {
                    "hs_timestamp": now,
                    "hs_call_direction": "INBOUND",
                    "hs_call_status": "COMPLETED",
                },
                "associations": [
                    {
                        "to": {"id": str(d)},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 206}],
                    }
                ],
            }
            for d in called_list[start : start + 100]
        ]
        api.call("POST", "/crm/v3/objects/calls/batch/create", {"inputs": inputs})
    api.close()
    return staged, called, Counter({"calls": len(called)})


def run(deals: int, seed: int = 7) -> dict[str, object]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    t0 = time.perf_counter()
    dataset = generate(seed, deals, now)
    generated = time.perf_counter() - t0
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=serve_hubspot_sandbox,
        args=(child,),
        kwargs={"dataset": dataset, "rate_limits": RateLimitConfig(enabled=False)},
        daemon=True,
    )
    process.start()
    try:
        base_url, token = parent.recv()
        connector = _connector(base_url, token)
        full_wall, pulled, cursor, full_tasks = _cycle(connector, None, 0.01, now)
        full_calls = dict(connector.usage().calls_by_endpoint)
        parent.send("stats")
        server_full = parent.recv()["total"]
        all_ids = {d.id for d in dataset.deals}
        full_needs = _needs(dataset, all_ids)
        # The tasks the full cycle created are engagements too, on 1% of the deals.
        staged, called, new = _change(base_url, token, dataset, 0.01)
        parent.send("reset")
        parent.recv()
        incremental = _connector(base_url, token)
        inc_wall, inc_deals, _cursor, inc_tasks = _cycle(incremental, cursor, 1.0, now + timedelta(minutes=1))
        inc_calls = dict(incremental.usage().calls_by_endpoint)
        parent.send("stats")
        server_inc = parent.recv()["total"]
        # Deals the cycle must rebuild: the changed ones, and those the full cycle gave a task.
        tasked = {int(d.id) for d in sorted(pulled, key=lambda d: int(d.id))[::100]}
        changed = staged | called | tasked
        inc_needs = _needs(dataset, changed, {"calls": len(called), "tasks": len(tasked)})
        new["tasks"] = len(tasked)
        full_min = full_minimum(full_needs, full_tasks)
        inc_min = incremental_minimum(inc_needs, new, inc_tasks)
        parent.send("stop")
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
    return {
        "deals": deals,
        "generated_s": generated,
        "pulled": len(pulled),
        "full": _summary(full_calls, full_min, full_wall, server_full),
        "incremental": _summary(inc_calls, inc_min, inc_wall, server_inc),
        "incremental_deals": len(inc_deals),
        "changed": len(changed),
        "load": os.getloadavg()[0],
    }


def _summary(calls: Mapping[str, int], minimum: int, wall: float, server_total: int) -> dict[str, object]:
    total = sum(calls.values())
    search = sum(n for k, n in calls.items() if k.endswith(".search"))
    starter = (total - search) / 10 + search / 4  # 100 per 10 s; search 4/s; computed, sequential
    return {
        "calls": total,
        "by_endpoint": dict(sorted(calls.items())),
        "minimum": minimum,
        "ratio": total / minimum,
        "wall_s": wall,
        "server_total": server_total,
        "starter_s": starter,
    }


def render(results: list[dict[str, object]]) -> str:
    lines = [
        SECTION,
        "",
        "`.venv/bin/python -m bench.bench_hubspot_connector --write-docs` "
        f"(run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; sandbox in a child process, rate limits off on both "
        "sides).",
        "",
        "Cycle = `read_directory` + `pull_changes` + `apply` (a CreateTask for 1% of the deals, or for",
        "every changed deal). Incremental = after 1% of the deals changed through the SDK (half stage",
        "changes, half a new logged call, found through associations). Minimum = one call per batch limit",
        "for exactly the data the cycle must read (search 200, associations 1,000, batch read/create 100).",
        "Starter time is **computed from the call counts**, not measured: non-search calls at 100 per 10 s",
        "plus searches at 4 per second. Wall times are from a shared 2-core machine; `load` is its 1-minute",
        "load average when the run ended (other work running makes the wall times longer). `sandbox` is the",
        "number of requests the sandbox itself counted: a cross-check of the connector's own count.",
        "",
        "| deals | cycle | calls | minimum | ratio | wall, no limits | Starter (computed) | sandbox | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name in ("full", "incremental"):
            s = r[name]
            assert isinstance(s, dict)
            lines.append(
                f"| {r['deals']:,} | {name} | {s['calls']:,} | {s['minimum']:,} | {s['ratio']:.3f} | "
                f"{s['wall_s']:.1f} s | {s['starter_s'] / 60:.1f} min | {s['server_total']:,} | "
                f"{r['load']:.1f} |"
            )
    lines.append("")
    for r in results:
        for name in ("full", "incremental"):
            s = r[name]
            assert isinstance(s, dict)
            by = ", ".join(f"{k} {v:,}" for k, v in s["by_endpoint"].items())
            lines.append(f"- {r['deals']:,} deals, {name}: {by}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deals", type=int, action="append", help="portal sizes (default 10,000 and 100,000)"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    results = []
    for size in args.deals or [10_000, 100_000]:
        result = run(size)
        results.append(result)
        for name in ("full", "incremental"):
            s = result[name]
            assert isinstance(s, dict)
            print(
                f"{size:>7,} deals {name:<11} calls {s['calls']:>6,}  minimum {s['minimum']:>6,}  "
                f"ratio {s['ratio']:.3f}  wall {s['wall_s']:7.1f} s  starter {s['starter_s'] / 60:6.1f} min  "
                f"(sandbox counted {s['server_total']:,})"
            )
            print("   ", s["by_endpoint"])
    text = render(results)
    if args.write_docs:
        write_section(SECTION, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
