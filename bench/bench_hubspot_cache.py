"""What the HubSpot pull's contact cache bound (``contact_cache_size``) costs in calls and saves in memory.

    .venv/bin/python -m bench.bench_hubspot_cache [--deals 10000,100000] [--sizes 2000,20000,0] [--write]

For each bound (0: no bound, every contact of the pull kept), in a fresh process: the HubSpot sandbox
seeded with ``--deals`` deals (seed 7) in a child process, rate limits off; one full pull through the real
connector and official client (``pull_changes`` with no cursor, nothing written), its limiter pacing on a
simulated clock. Per bound: the contacts read (a contact let go and needed again is read again), the
distinct contacts on the deals, the pull's API calls (and how many more than with no bound), its CPU time
and the process's peak RSS. The sandbox generator gives a company's deals anywhere in the id range (about
3 deals a company; a company's contacts are shared by its deals), so a contact's deals are far apart.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.harness import SimulatedTime, machine, start_hubspot_sandbox, write_section

SECTION = "## HubSpot contact cache"
TOKEN_ENV = "BENCH_HUBSPOT_TOKEN"
UNBOUNDED = 10**9


def _pull(deals: int, bound: int, out: Any) -> None:
    from crm_sandbox.hubspot import RateLimitConfig

    from connectors.hubspot import HubSpotOptions, build_hubspot_connector
    from connectors.hubspot.aggregate import AggregateBuilder
    from connectors.hubspot.fetch import Fetcher
    from connectors.hubspot.pull import Puller
    from worker import configure_logging

    configure_logging("error", "json")
    server, parent, base_url, token = start_hubspot_sandbox(
        seed=7, deals=deals, rate_limits=RateLimitConfig.off()
    )
    os.environ[TOKEN_ENV] = token
    options = HubSpotOptions(
        host=base_url,
        access_token_env=TOKEN_ENV,
        activity_lookback_days=3650,
        contact_cache_size=bound or UNBOUNDED,
    )
    clock = SimulatedTime()
    connector = build_hubspot_connector(
        options, now=lambda: datetime.now(UTC), monotonic=clock.monotonic, sleep=clock.sleep
    )
    try:
        directory = connector.read_directory()
        fetcher = Fetcher(connector.client)
        puller = Puller(fetcher, AggregateBuilder(fetcher, options), options)
        before = Counter(connector.usage().calls_by_endpoint)
        cpu = time.process_time()
        pulled = 0
        contacts: set[str] = set()
        for batch in puller.pull(directory, None):
            pulled += len(batch.deals)
            contacts.update(c.id for d in batch.deals for c in d.contacts)
        cpu = time.process_time() - cpu
        calls = Counter(connector.usage().calls_by_endpoint) - before
        assert puller.cache is not None
        out.send(
            {
                "bound": bound,
                "deals": pulled,
                "contacts_read": puller.cache.reads,
                "contacts": len(contacts),
                "calls": sum(calls.values()),
                "cpu_s": cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    finally:
        connector.close()
        parent.send("stop")
        server.join(timeout=30)


def _in_fresh_process(deals: int, bound: int) -> dict[str, Any]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_pull, args=(deals, bound, child))
    process.start()
    row: dict[str, Any] = parent.recv()
    process.join()
    return row


def render(rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`. Machine: {machine()}, {datetime.now(UTC):%H:%M} UTC, load "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "One full HubSpot pull per row (nothing written), each in a fresh process; the sandbox (seed 7, rate",
        "limits off) in its own. A full pull keeps a contact only until the last of its deals (one contacts",
        "-> deals association call per 1,000 contacts read) and the bound caps what it keeps; a contact let",
        "go before a later deal of its is read again. Contacts on the deals: the distinct contacts the",
        "aggregates name. Extra calls: against the same pull with no bound.",
        "",
        "| deals | contact_cache_size | contacts read (on the deals) | API calls | extra calls | pull CPU "
        "| peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    unbounded = {r["deals"]: r["calls"] for r in rows if r["bound"] == 0}
    for r in rows:
        base = unbounded.get(r["deals"])
        extra = f"{r['calls'] - base:+,} ({(r['calls'] / base - 1) * 100:+.1f}%)" if base else "-"
        lines.append(
            f"| {r['deals']:,} | {r['bound'] or 'no bound'} | {r['contacts_read']:,} ({r['contacts']:,}) "
            f"| {r['calls']:,} | {extra} | {r['cpu_s']:.1f} s | {r['peak_rss_mb']:.0f} MB |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", default="10000", help="sizes, comma-separated")
    parser.add_argument("--sizes", default="2000,20000,0", help="cache bounds; 0: no bound")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    for deals in (int(d) for d in args.deals.split(",") if d):
        for bound in (int(s) for s in args.sizes.split(",") if s):
            rows.append(_in_fresh_process(deals, bound))
            print(json.dumps(rows[-1]), flush=True)
    text = render(rows, "python -m bench.bench_hubspot_cache " + " ".join(sys.argv[1:]))
    print(text)
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
