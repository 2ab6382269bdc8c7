"""How long a worker's transaction sits idle between two statements: the floor of
``store.idle_in_transaction_timeout``.

The timeout ends a session that has sat inside a transaction without sending a statement for that long (a
worker frozen mid-transaction). It must never end a healthy worker's transaction: this measures the longest
such pause of real ``followup serve`` processes cycling real accounts. A fresh PostgreSQL database, the
fleet benchmark's sandboxes (half HubSpot portals, half Salesforce orgs), every account ``every: 10s``,
``--workers`` processes with the setting at an hour (so nothing is ended while it is measured), and for
``--seconds`` this process samples ``pg_stat_activity`` every ``--interval`` seconds: each session found
``idle in transaction`` is a pause, and its age (``clock_timestamp() - state_change``) a lower bound of
its length. ``--load 0,2`` runs once with no busy Python loop beside them and once with two (a starved
machine). Reported per run: samples, sightings, the longest pauses seen, and the cycles completed.

    url=$(.ci/postgres.sh start /tmp/pg-bench)
    .venv/bin/python -m bench.bench_idle_in_transaction --postgres "$url" [--accounts 30] [--deals 12]
        [--workers 3] [--seconds 60] [--load 0,2] [--write]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.bench_fleet import database, sandboxes, write_settings
from bench.harness import FOLLOWUP, ROOT, machine, write_section

SECTION = "## Idle time inside the worker's transactions (store.idle_in_transaction_timeout)"
IDLE = (
    "SELECT extract(epoch FROM clock_timestamp() - state_change), left(query, 40) FROM pg_stat_activity "
    "WHERE datname = current_database() AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
)


def measure(args: argparse.Namespace, load: int) -> dict[str, object]:
    hubspot = args.accounts // 2
    with (
        database(args.postgres) as store_url,
        sandboxes(hubspot, args.accounts - hubspot, args.deals) as (hs, sf),
        tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp,
    ):
        folder = Path(tmp)
        write_settings(folder, store_url, hs, sf, 4, "30s")
        settings = folder / "settings.yaml"
        text = settings.read_text(encoding="utf-8").replace("schedule: {every: 1h}", "schedule: {every: 10s}")
        text = text.replace(
            f"store: {{url: '{store_url}'}}",
            f"store: {{url: '{store_url}', idle_in_transaction_timeout: 1h}}",
        )
        settings.write_text(text, encoding="utf-8")
        from store import StateStore

        StateStore(store_url).close()  # migrated before the workers start
        logs = [(folder / f"worker-{n}.log").open("wb") for n in range(args.workers)]
        workers = [
            subprocess.Popen(
                [str(FOLLOWUP), "serve", "--settings", str(settings)], cwd=ROOT, stdout=out, stderr=out
            )
            for out in logs
        ]
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
        engine = sa.create_engine(store_url, isolation_level="AUTOCOMMIT")
        pauses: list[tuple[float, str]] = []
        samples = 0
        try:
            time.sleep(5)  # the workers start, migrate nothing, claim
            average = f"{os.getloadavg()[0]:.1f}"
            end = time.monotonic() + args.seconds
            with engine.connect() as connection:
                while time.monotonic() < end:
                    pauses.extend((float(age), query) for age, query in connection.execute(sa.text(IDLE)))
                    samples += 1
                    time.sleep(args.interval)
            average = f"{average}-{os.getloadavg()[0]:.1f}"
        finally:
            for process in busy:
                process.kill()
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                process.wait(timeout=180)
            for out in logs:
                out.close()
            with engine.connect() as connection:
                cycles = connection.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'ok'")).scalar()
            engine.dispose()
    pauses.sort(reverse=True)
    return {"samples": samples, "pauses": pauses, "cycles": cycles, "load": load, "average": average}


def markdown(args: argparse.Namespace, runs: list[dict[str, object]], command: str) -> str:
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}; 2 cores shared by the workers, both sandboxes and PostgreSQL (and the busy "
        f"loops). {args.accounts} accounts x {args.deals} deals every 10 s, {args.workers} `followup serve` "
        f"workers, the bundled policies; `pg_stat_activity` sampled every {args.interval * 1000:.0f} ms for "
        f"{args.seconds:.0f} s per row. A sighting is a worker session found idle inside a transaction; its "
        "age is a lower bound of that pause.",
        "",
        f"Command: `{command}`",
        "",
        "| busy loops | load average | samples | sightings | cycles completed | longest pauses (statement "
        "before) | 1 min / longest |",
        "|---|---|---|---|---|---|---|",
    ]
    for found in runs:
        pauses = found["pauses"]
        assert isinstance(pauses, list)
        longest = ", ".join(
            f"{age * 1000:.0f} ms ({query.split()[0] if query else '-'})" for age, query in pauses[:3]
        )
        ratio = f"{60 / max(pauses[0][0], 0.001):,.0f}x" if pauses else "-"
        lines.append(
            f"| {found['load']} | {found['average']} | {found['samples']} | {len(pauses)} | "
            f"{found['cycles']} | {longest or 'none'} | {ratio} |"
        )
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("FOLLOWUP_BENCH_POSTGRES_URL"))
    parser.add_argument("--accounts", type=int, default=30)
    parser.add_argument("--deals", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--load", default="0,2", help="busy Python loops beside the workers, one run each")
    parser.add_argument("--write", action="store_true", help="replace our section of docs/benchmarks.md")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or FOLLOWUP_BENCH_POSTGRES_URL): a PostgreSQL server")
    command = ".venv/bin/python -m bench.bench_idle_in_transaction --postgres URL" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--accounts", args.accounts, 30),
            ("--deals", args.deals, 12),
            ("--workers", args.workers, 3),
            ("--seconds", args.seconds, 60),
            ("--load", args.load, "0,2"),
        )
        if value != default
    )
    runs = []
    for load in [int(n) for n in args.load.split(",")]:
        print(f"{load} busy loop(s)", file=sys.stderr, flush=True)
        runs.append(measure(args, load))
    section = markdown(args, runs, command + " --write" * args.write)
    print(section)
    if args.write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
