"""What the lease check before each CRM call of an apply costs: one ``sync.leases.acquire`` round trip.

During an apply the cycle renews the account's lease before every CRM call the connector makes
(``apply(before_each_call=...)``, sync/cycle.py ``_hold_lease``), so the cost is (calls made during the
apply) x (one renewal). This measures the renewal, as the guard runs it (an UPDATE in its own transaction),
``--rounds`` times on a file SQLite store and, with ``--postgres``, on a fresh PostgreSQL database, and
multiplies it by the write-phase calls of a 10,000-deal first cycle ("Whole worker cycle: before and after
batching the writes": HubSpot 125, Salesforce about 32).

    url=$(.ci/postgres.sh start /tmp/pg-bench)
    .venv/bin/python -m bench.bench_lease_guard [--postgres "$url"] [--rounds 2000] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import machine, write_section

SECTION = "## Lease check before each CRM call of an apply"
APPLY_CALLS = {"HubSpot": 125, "Salesforce": 32}  # write-phase calls of a 10,000-deal first cycle


def measure(url: str, rounds: int) -> list[float]:
    """Milliseconds per renewal, ``rounds`` times, of a lease this holder has."""
    from store import StateStore
    from sync.leases import acquire

    store = StateStore(url)
    try:
        now = datetime.now(UTC)
        store.ensure_account("bench", "hubspot", now)
        ttl = timedelta(minutes=10)
        assert acquire(store, "bench", "bench:1", now, ttl)
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            assert acquire(store, "bench", "bench:1", datetime.now(UTC), ttl)
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        store.close()


def postgres_database(base: str) -> str:
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text('DROP DATABASE IF EXISTS "bench_lease_guard" WITH (FORCE)'))
        connection.execute(text('CREATE DATABASE "bench_lease_guard"'))
    admin.dispose()
    return make_url(base).set(database="bench_lease_guard").render_as_string(hide_password=False)


def row(store: str, times: list[float]) -> str:
    ordered = sorted(times)
    median = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    per_cycle = ", ".join(
        f"{crm} {calls} calls: {calls * median:.0f} ms" for crm, calls in APPLY_CALLS.items()
    )
    return f"| {store} | {len(times)} | {median:.2f} | {p99:.2f} | {max(ordered):.1f} | {per_cycle} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created on it)")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--write", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lease-") as tmp:
        rows.append(row("SQLite (file)", measure(f"sqlite:///{Path(tmp) / 'state.sqlite'}", args.rounds)))
    if args.postgres:
        rows.append(row("PostgreSQL (local)", measure(postgres_database(args.postgres), args.rounds)))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    section = (
        f"{SECTION}\n\n"
        f"Machine: {machine()}; load average {load} (2 cores shared with other work). One renewal of the "
        "account's lease (`sync.leases.acquire`: an UPDATE in its own transaction), as the cycle runs it "
        "before each CRM call of an apply; the last column multiplies the median by the write-phase calls "
        'of a 10,000-deal first cycle ("Whole worker cycle: before and after batching the writes").\n\n'
        "Command: `.venv/bin/python -m bench.bench_lease_guard --postgres URL --write`\n\n"
        "| store | renewals | median ms | p99 ms | max ms | per 10,000-deal first cycle (median) |\n"
        "|---|---:|---:|---:|---:|---|\n" + "\n".join(rows) + "\n"
    )
    print(section)
    if args.write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
