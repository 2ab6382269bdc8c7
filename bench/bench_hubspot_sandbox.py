"""Benchmark the HubSpot sandbox: batch reads and searches per second with 100,000 deals, rate limits off.

    .venv/bin/python -m bench.bench_hubspot_sandbox                 # print a markdown section
    .venv/bin/python -m bench.bench_hubspot_sandbox --write         # and replace our docs/benchmarks.md
    section
    .venv/bin/python -m bench.bench_hubspot_sandbox --deals 10000 --seconds 5   # quick run

The server runs as ``crm-sandbox hubspot`` in its own process (as users run it, and so the client's
Python does not share the server's GIL), with the dataset from ``crm_sandbox.dataset.generate_or_load``
under ``.sandbox-data/``). A few client threads each hold one keep-alive connection (``http.client``) and
send, for ``--seconds`` each: (1) batch reads of 100 random deal ids with ten properties, (2) searches of an
``hs_lastmodifieddate`` window sorted by that property, 200 per page, at a random page of the window. Every
response is checked for status 200 and a full page. Target (issue 3): 500 requests per second or more.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import DATASET_CACHE, FOLLOWUP, free_port, machine, throughput_main

SECTION = "## HubSpot sandbox throughput"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SEED = 7
TOKEN = "pat-na1-bench-token"
PROPERTIES = [
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "hubspot_owner_id",
    "hs_lastmodifieddate",
    "hs_next_step",
    "notes_last_contacted",
    "notes_next_activity_date",
]
DAY_MS = 86_400_000


def _loads(payload: bytes) -> dict[str, Any]:
    """Parse a response; orjson when installed, so the client's parsing is not what the run measures."""
    try:
        import orjson
    except ImportError:
        parsed = json.loads(payload)
    else:
        parsed = orjson.loads(payload)
    assert isinstance(parsed, dict), type(parsed)  # every answer the run reads is a JSON object
    return parsed


def start_server(deals: int, port: int) -> subprocess.Popen[bytes]:
    """Start ``followup sandbox hubspot`` and wait until it accepts connections."""
    command = [str(FOLLOWUP), "sandbox", "hubspot", "--no-rate-limits"]
    command += ["--port", str(port), "--deals", str(deals), "--seed", str(SEED), "--now", NOW.isoformat()]
    command += ["--data", str(DATASET_CACHE), "--token", TOKEN]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the sandbox did not start within 600 s")


class Client:
    """One keep-alive connection sending JSON requests; raises on any unexpected answer."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        return self.post_raw(path, json.dumps(body).encode())

    def post_raw(self, path: str, body: bytes) -> dict[str, object]:
        self.connection.request("POST", path, body, self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}: {payload[:200]!r}")
        return _loads(payload)


# A prepared request: path, JSON body, and a check of the parsed answer. Bodies are built before the clock
# starts, so the client spends its time sending and reading, as a load generator should.
Prepared = tuple[str, bytes, Callable[[dict[str, Any]], bool]]


def prepare_batch_reads(rng: random.Random, deals: int, count: int) -> list[Prepared]:
    """Batch reads of 100 random deal ids with ten properties; all ids exist, so all must come back."""
    prepared: list[Prepared] = []
    for _ in range(count):
        ids = {str(rng.randint(1, deals)) for _ in range(100)}
        body = json.dumps({"inputs": [{"id": i} for i in ids], "properties": PROPERTIES}).encode()
        expected = len(ids)

        def check(r: dict[str, Any], expected: int = expected) -> bool:
            return len(r["results"]) == expected

        prepared.append(("/crm/v3/objects/deals/batch/read", body, check))
    return prepared


def prepare_searches(rng: random.Random, window: tuple[int, int], count: int) -> list[Prepared]:
    """30-day ``hs_lastmodifieddate`` windows sorted by it, 200 per page, at a random page of the window."""
    prepared: list[Prepared] = []
    for _ in range(count):
        start = rng.randint(window[0], window[1] - 30 * DAY_MS)
        after = rng.choice([0, 200, 400, 1000])
        window_filters = [
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(start)},
            {"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": str(start + 30 * DAY_MS)},
        ]
        body = {
            "filterGroups": [{"filters": window_filters}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": PROPERTIES,
            "limit": 200,
            "after": str(after),
        }

        def check(r: dict[str, Any], after: int = after) -> bool:
            return len(r["results"]) == max(0, min(200, int(r["total"]) - after))

        prepared.append(("/crm/v3/objects/deals/search", json.dumps(body).encode(), check))
    return prepared


def first_pass(port: int, deals: int, threads: int) -> dict[str, float]:
    """Batch-read every deal once (renders each record's properties on first touch); returns its rate."""
    chunks = [list(range(start, min(start + 100, deals + 1))) for start in range(1, deals + 1, 100)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        client = Client(port)
        try:
            for chunk in chunks[index::threads]:
                inputs = [{"id": str(i)} for i in chunk]
                client.post("/crm/v3/objects/deals/batch/read", {"inputs": inputs, "properties": PROPERTIES})
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    began = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise RuntimeError(f"first pass failed: {errors[0]!r}")
    return {"requests": len(chunks), "rps": len(chunks) / (time.perf_counter() - began)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    port: int, server_pid: int, threads: int, seconds: float, work: list[list[Prepared]]
) -> dict[str, float]:
    """Requests per second, latency percentiles and the server's CPU time per request.

    ``threads`` keep-alive clients cycle through ``work``. The CPU figure does not depend on what else runs on
    the machine: 1000 / (CPU ms per request) is what one core can serve.
    """
    cpu_before = cpu_seconds(server_pid)
    client_before = time.process_time()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        client = Client(port)
        mine = work[index]
        try:
            n = 0
            while time.perf_counter() < stop_at:
                path, body, check = mine[n % len(mine)]
                n += 1
                started = time.perf_counter()
                answer = client.post_raw(path, body)
                latencies[index].append(time.perf_counter() - started)
                if not check(answer):
                    errors.append(RuntimeError(f"unexpected answer to {path}"))
                    return
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    began = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    flat = sorted(x for per in latencies for x in per)
    cpu_ms = (cpu_seconds(server_pid) - cpu_before) * 1000 / max(1, len(flat))
    client_ms = (time.process_time() - client_before) * 1000 / max(1, len(flat))
    return {
        "cpu_ms": cpu_ms,
        "client_ms": client_ms,
        "requests": len(flat),
        "rps": len(flat) / elapsed,
        "p50_ms": flat[len(flat) // 2] * 1000,
        "p95_ms": flat[int(len(flat) * 0.95)] * 1000,
    }


def _stamp(body: dict[str, Any]) -> int:
    first = body["results"][0]
    return int(datetime.fromisoformat(first["updatedAt"].replace("Z", "+00:00")).timestamp() * 1000)


def run(deals: int, threads: int, seconds: float) -> dict[str, object]:
    port = free_port()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    server = start_server(deals, port)
    startup = time.perf_counter() - started
    try:
        client = Client(port)
        newest = client.post("/crm/v3/objects/deals/search", {"sorts": ["-hs_lastmodifieddate"], "limit": 1})
        oldest = client.post("/crm/v3/objects/deals/search", {"sorts": ["hs_lastmodifieddate"], "limit": 1})
        window = (_stamp(oldest), _stamp(newest))
        warm = first_pass(port, deals, threads)
        results = {
            "first_pass": warm,
            "batch_read": measure(
                port,
                server.pid,
                threads,
                seconds,
                [prepare_batch_reads(random.Random(i), deals, 500) for i in range(threads)],
            ),
            "search": measure(
                port,
                server.pid,
                threads,
                seconds,
                [prepare_searches(random.Random(i), window, 500) for i in range(threads)],
            ),
        }
    finally:
        server.terminate()
        server.wait(30)
    return {"startup_s": startup, "load_before": load_before, "load_after": os.getloadavg()[0], **results}


def markdown(figures: dict[str, object], command: str, deals: int, threads: int, seconds: float) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{command}`.",
        f"Machine: {machine()}; 1-minute load average "
        f"{figures['load_before']:.1f} before and {figures['load_after']:.1f} after the run (other work "
        "on the machine competes for its two cores).",
        f"Setup: `followup sandbox hubspot --no-rate-limits` in its own process, {deals:,} deals "
        f"(seed {SEED});",
        f"{threads} client threads in the benchmark process, one keep-alive `http.client` connection each,",
        f"{seconds:.0f} s per operation; every response checked (status 200, full page).",
        "",
        "| operation | requests | requests/s | p50 | p95 | server CPU / req | req/s per server core "
        "| client CPU / req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first = figures["first_pass"]
    assert isinstance(first, dict)
    labels = {
        "batch_read": "batch read, 100 random ids, 10 properties",
        "search": "search, `hs_lastmodifieddate` 30-day window, sorted, 200 per page",
    }
    for key, label in labels.items():
        row = figures[key]
        assert isinstance(row, dict)
        rate, p50, p95 = f"{row['rps']:,.0f}", f"{row['p50_ms']:.1f} ms", f"{row['p95_ms']:.1f} ms"
        cpu = f"{row['cpu_ms']:.2f} ms | {1000 / row['cpu_ms']:,.0f} | {row['client_ms']:.2f} ms"
        lines.append(f"| {label} | {row['requests']:,.0f} | {rate} | {p50} | {p95} | {cpu} |")
    notes = (
        f"Start-up (dataset from the `.sandbox-data/` cache, portal load, first connection): "
        f"{figures['startup_s']:.1f} s. Before measuring, every deal is batch-read once, because a record's "
        "properties are rendered from the dataset on first touch (that keeps start-up in seconds) and a "
        "record then keeps the bodies of its last two reads per property list (exact: a write stores a new "
        f"record); the first pass ran at {first['rps']:,.0f} requests/s ({first['requests']:,.0f} requests). "
        'Target (issue 3): >= 500 requests/s for both operations. "req/s per server core" (1000 / server CPU '
        "ms per request) is what the sandbox serves on one core whatever else the machine runs; requests/s "
        "is what this run got with the load average above (client and server share the two cores with other "
        "work); the client's own CPU per request shows when the Python client, not the sandbox, is the limit."
    )
    lines += ["", textwrap.fill(notes, width=104, break_on_hyphens=False), ""]
    return "\n".join(lines)


def main() -> None:
    description = (__doc__ or "").splitlines()[0]
    throughput_main("bench_hubspot_sandbox", description, SECTION, 4, run, markdown)


if __name__ == "__main__":
    main()
