"""Benchmark the Salesforce sandbox: SOQL query pages per second over 100,000 opportunities, over HTTPS.

    .venv/bin/python -m bench.bench_salesforce_sandbox                 # print a markdown section
    .venv/bin/python -m bench.bench_salesforce_sandbox --write         # and replace our docs/benchmarks.md
    section
    .venv/bin/python -m bench.bench_salesforce_sandbox --deals 10000 --seconds 5   # quick run

The server runs as ``followup sandbox salesforce`` in its own process (as users run it; the client's Python
does not share the server's GIL), with the dataset from ``crm_sandbox.dataset.generate_or_load`` (cached under
``.sandbox-data/``). Client threads, each with one keep-alive ``requests`` session trusting the sandbox CA,
run for ``--seconds`` each: (1) a full export of Opportunity ordered by SystemModstamp, Id, 2,000 per page,
following nextRecordsUrl; (2) the worker's incremental query (SystemModstamp watermark a day back) with
OpportunityContactRoles and Tasks subqueries, 200 per page; (3) record GETs by random id. Every response is
checked for status 200 and a non-empty page.
"""

from __future__ import annotations

import os
import random
import re
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from bench.harness import DATASET_CACHE, FOLLOWUP, free_port, machine, throughput_main

SECTION = "## Salesforce sandbox throughput"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SEED = 7
API = "/services/data/v62.0"
EXPORT = (
    "SELECT Id, Name, StageName, CloseDate, Amount, OwnerId, IsClosed, SystemModstamp FROM Opportunity "
    "ORDER BY SystemModstamp, Id"
)
INCREMENTAL = (
    "SELECT Id, StageName, IsClosed, IsWon, NextStep, CloseDate, Amount, OwnerId, LastActivityDate, "
    "SystemModstamp, Followup_State__c, (SELECT ContactId, Role, IsPrimary FROM OpportunityContactRoles), "
    "(SELECT Id, Subject, Status, ActivityDate, TaskSubtype, IsClosed FROM Tasks ORDER BY CreatedDate DESC "
    "LIMIT 20) FROM Opportunity WHERE SystemModstamp > 2026-03-01T09:30:00Z ORDER BY SystemModstamp, Id"
)


def start_server(deals: int, port: int) -> tuple[subprocess.Popen[str], str, str, str]:
    """Start ``followup sandbox salesforce``; return it with its instance URL, CA file and token."""
    command = [str(FOLLOWUP), "sandbox", "salesforce", "--port", str(port)]
    command += ["--deals", str(deals), "--seed", str(SEED), "--now", NOW.isoformat()]
    command += ["--data", str(DATASET_CACHE), "--daily-api-limit", "100000000"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert server.stdout is not None
    found: dict[str, str] = {}
    for line in server.stdout:
        if m := re.search(r"Salesforce sandbox on (\S+)", line):
            found["url"] = m.group(1)
        if m := re.search(r"CA file \(trust it\):\s+(\S+)", line):
            found["ca"] = m.group(1)
        if m := re.search(r"access token:\s+(\S+)", line):
            found["token"] = m.group(1)
        if len(found) == 3:
            break
    if len(found) != 3:
        server.terminate()
        raise RuntimeError(f"the sandbox exited with {server.wait(30)} before printing its address")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    return server, found["url"], found["ca"], found["token"]


def session(ca: str, token: str) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env = ca, False
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def get(s: requests.Session, url: str, **kw: Any) -> dict[str, Any]:
    response = s.get(url, timeout=120, **kw)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    body: dict[str, Any] = response.json()
    return body


def query_pages(
    base: str, s: requests.Session, soql: str, batch: int, stop: Callable[[], bool]
) -> list[float]:
    """Run ``soql`` and follow nextRecordsUrl to the end (or until ``stop``); latency of each page."""
    latencies = []
    headers = {"Sforce-Query-Options": f"batchSize={batch}"}
    t = time.perf_counter()
    page = get(s, f"{base}{API}/query/", params={"q": soql}, headers=headers)
    latencies.append(time.perf_counter() - t)
    while not page["done"] and not stop():
        if not page["records"]:
            raise RuntimeError("empty page before the end")
        t = time.perf_counter()
        page = get(s, base + page["nextRecordsUrl"], headers=headers)
        latencies.append(time.perf_counter() - t)
    return latencies


def measure(
    threads: int,
    seconds: float,
    work: Callable[[requests.Session, Callable[[], bool]], list[float]],
    make: Callable[[], requests.Session],
) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def stop() -> bool:
        return time.perf_counter() >= deadline

    def worker() -> None:
        with make() as s:
            while not stop():
                got = work(s, stop)
                with lock:
                    latencies.extend(got)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "rps": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
    }


def run(deals: int, threads: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    started = time.perf_counter()
    server, base, ca, token = start_server(deals, port)
    startup = time.perf_counter() - started
    try:
        with session(ca, token) as s:
            ids = [
                r["Id"]
                for r in get(s, f"{base}{API}/query/", params={"q": "SELECT Id FROM Opportunity"})["records"]
            ]
            t = time.perf_counter()
            export_pages = query_pages(base, s, EXPORT, 2000, lambda: False)
            export_s = time.perf_counter() - t
            # warm-up: the first subquery over Tasks builds the WhatId index of ~1,000,000 tasks
            t = time.perf_counter()
            query_pages(base, s, INCREMENTAL, 200, lambda: False)
            warm_s = time.perf_counter() - t
        make = lambda: session(ca, token)  # noqa: E731
        rng = random.Random(SEED)

        def point(s: requests.Session, stop: Callable[[], bool]) -> list[float]:
            t = time.perf_counter()
            get(s, f"{base}{API}/sobjects/Opportunity/{rng.choice(ids)}")
            return [time.perf_counter() - t]

        results = {
            "export": measure(
                threads, seconds, lambda s, stop: query_pages(base, s, EXPORT, 2000, stop), make
            ),
            "incremental": measure(
                threads, seconds, lambda s, stop: query_pages(base, s, INCREMENTAL, 200, stop), make
            ),
            "get": measure(threads, seconds, point, make),
        }
    finally:
        server.terminate()
        server.wait(30)
    return {
        "startup_s": startup,
        "export_once_s": export_s,
        "export_pages": len(export_pages),
        "warm_s": warm_s,
        **results,
    }


def markdown(figures: dict[str, Any], command: str, deals: int, threads: int, seconds: float) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`.",
        f"Machine: {machine()}.",
        f"Setup: `followup sandbox salesforce` (HTTPS) in its own process, {deals:,} opportunities "
        f"(seed {SEED}); {threads} client threads, one keep-alive `requests` session each, "
        f"{seconds:g} s per operation; every response checked (status 200, non-empty page).",
        "",
        "| operation | requests | requests/s | p50 | p95 |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {
        "export": "query pages: Opportunity export ordered by SystemModstamp, 2,000 per page",
        "incremental": "query pages: incremental query + OpportunityContactRoles/Tasks subqueries, 200/page",
        "get": "GET sobjects/Opportunity/{id}",
    }
    for key, label in labels.items():
        row = figures[key]
        timing = f"{row['p50_ms']:.1f} ms | {row['p95_ms']:.1f} ms"
        lines.append(f"| {label} | {row['requests']:,} | {row['rps']:,.1f} | {timing} |")
    lines += [
        "",
        f"One full export ({figures['export_pages']} pages) took {figures['export_once_s']:.1f} s. Start-up "
        f"(dataset from the `.sandbox-data/` cache, org load, TLS files): {figures['startup_s']:.1f} s. The",
        f"first incremental query (which builds the Task and contact-role lookup indexes on first use) took "
        f"{figures['warm_s']:.1f} s; it ran once before measuring.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    description = (__doc__ or "").splitlines()[0]
    throughput_main("bench_salesforce_sandbox", description, SECTION, 2, run, markdown)


if __name__ == "__main__":
    main()
