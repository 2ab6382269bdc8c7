"""Backtest speed and memory: ``followup backtest``'s replay over a generated pipeline with history.

The pipeline comes from the sandbox generator with histories (``crm_sandbox.dataset.generate(...,
history=True)``, seed 7), mapped into a snapshot with history (``connectors.sandbox_dataset``) in a child
process and handed over as a pickle (cached under .sandbox-data/), so that generating it is neither timed
nor part of the measured process's memory. A second child process, pinned to one core with ``taskset -c 0``
where available, loads it and runs ``policies.backtest.run_backtest`` with the bundled example policy over
the last ``--days`` days (a cycle every hour of working time): CPU time, wall time, peak RSS (its
``ru_maxrss``), and how many deal evaluations the event-driven replay made against the
deals x cycles a day-by-day replay would make. Run:

    .venv/bin/python -m bench.bench_backtest --deals 10000 --days 180 [--write]
    .venv/bin/python -m bench.bench_backtest --deals 100000 --days 90 [--write]

``--write`` replaces this benchmark's section of docs/benchmarks.md (one row per size measured so far is
kept in the section: run both sizes with --write).
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import BENCHMARKS_DOC, DATASET_CACHE, ROOT, machine, write_section

NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)
SEED = 7
HEADING = "## Backtest"
_HEADER = (
    "| deals | days | activities / history rows | CPU (one core) | wall | load | peak RSS "
    "| evaluations (of deals x cycles) | stops / tasks |\n|---|---|---|---|---|---|---|---|---|"
)
TARGETS = {(10_000, 180): 60.0, (100_000, 90): 600.0}  # seconds of CPU on one core


def _snapshot_file(deals: int) -> Path:
    path = DATASET_CACHE / f"backtest-seed{SEED}-deals{deals}-{NOW:%Y%m%dT%H%M}-v2.pickle"
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "bench.bench_backtest", "--make", str(path), "--deals", str(deals)],
            check=True,
            cwd=ROOT,
        )
    return path


_CHUNK = 2_000  # deals per pickle frame: loading one frame at a time keeps the unpickler's memo small


def _make(path: Path, deals: int) -> None:
    from crm_sandbox.dataset import generate

    from connectors.sandbox_dataset import snapshot_from_dataset

    snapshot = snapshot_from_dataset(generate(SEED, deals, NOW, history=True))
    assert snapshot.history is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as file:
        header = (snapshot.crm, snapshot.owners, snapshot.pipelines, snapshot.taken_at, len(snapshot.deals))
        pickle.dump(header, file, protocol=5)
        histories = snapshot.history.deals
        for start in range(0, len(snapshot.deals), _CHUNK):
            chunk = snapshot.deals[start : start + _CHUNK]
            pickle.dump(
                (chunk, {d.id: histories[d.id] for d in chunk if d.id in histories}), file, protocol=5
            )
    temporary.replace(path)


def _load(path: Path) -> Any:
    from policies.codec import Snapshot
    from policies.history import SnapshotHistory

    deals: list[Any] = []
    histories: dict[str, Any] = {}
    with path.open("rb") as file:
        crm, owners, pipelines, taken_at, count = pickle.load(file)
        while len(deals) < count:
            chunk, found = pickle.load(file)
            deals.extend(chunk)
            histories.update(found)
    return Snapshot(crm, owners, pipelines, tuple(deals), taken_at, SnapshotHistory(histories))


def _measure(path: Path, days: int) -> dict[str, Any]:
    import policies.replay as replay_module
    from policies.backtest import Period, run_backtest
    from policies.loader import load_policy
    from policies.sweep import variants

    started = time.perf_counter()
    gc.disable()
    snapshot = _load(path)
    gc.enable()
    loaded = time.perf_counter() - started
    evaluations = 0
    evaluate = replay_module.evaluate

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal evaluations
        evaluations += 1
        return evaluate(*args, **kwargs)

    replay_module.evaluate = counting  # type: ignore[assignment]
    chosen = variants([("config/policies", load_policy(ROOT / "config" / "policies"))], [])
    period = Period(NOW.date() - timedelta(days=days), NOW.date(), timedelta(hours=1))
    cpu, wall = time.process_time(), time.perf_counter()
    report = run_backtest(snapshot, chosen, period)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    [variant] = report["variants"]
    return {
        "deals": len(snapshot.deals),
        "days": days,
        "history_rows": sum(len(h.changes) for h in snapshot.history.deals.values()),
        "activities": sum(len(d.activities) for d in snapshot.deals),
        "load_s": round(loaded, 1),
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cycles": variant["cycles"],
        "evaluations": evaluations,
        "stops": variant["account"]["stops"]["stopped"] + variant["account"]["stops"]["nurtured"],
        "tasks": variant["account"]["busy_work"]["tasks_created"],
    }


def _row(result: dict[str, Any]) -> str:
    target = TARGETS.get((result["deals"], result["days"]))
    verdict = ""
    if target is not None:
        verdict = f" (target < {target:.0f} s: {'met' if result['cpu_s'] < target else 'MISSED'})"
    naive = result["deals"] * result["cycles"]
    share = result["evaluations"] / naive
    return (
        f"| {result['deals']:,} | {result['days']} | {result['activities']:,} / {result['history_rows']:,} | "
        f"{result['cpu_s']:.1f} s{verdict} | {result['wall_s']:.1f} s | {result['load_s']:.1f} s | "
        f"{result['peak_rss_mb']:,} MB | {result['evaluations']:,} of {naive:,} ({share:.1%}) | "
        f"{result['stops']:,} / {result['tasks']:,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--write", action="store_true", help="write the figures into docs/benchmarks.md")
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make is not None:
        _make(args.make, args.deals)
        return
    if args.measure is not None:
        print(json.dumps(_measure(args.measure, args.days)))
        return
    path = _snapshot_file(args.deals)
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    child = subprocess.run(
        [
            *pin,
            sys.executable,
            "-m",
            "bench.bench_backtest",
            "--measure",
            str(path),
            "--days",
            str(args.days),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result = json.loads(child.stdout)
    print(json.dumps(result, indent=2))
    print(_row(result))
    if args.write:
        _write(result, "taskset -c 0" if pin else "not pinned (no taskset)")


def _write(result: dict[str, Any], pinned: str) -> None:
    rows: dict[tuple[int, int], str] = {}
    text = BENCHMARKS_DOC.read_text(encoding="utf-8") if BENCHMARKS_DOC.exists() else ""
    if HEADING in text:
        section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) > 2 and cells[0].replace(",", "").isdigit():
                rows[(int(cells[0].replace(",", "")), int(cells[1]))] = line
    rows[(result["deals"], result["days"])] = _row(result)
    table = "\n".join(rows[key] for key in sorted(rows))
    section = f"""{HEADING}

Command: `.venv/bin/python -m bench.bench_backtest --deals 10000 --days 180 --write` and
`... --deals 100000 --days 90 --write`. Machine: {machine()}; the measured process {pinned}.
The pipeline is the sandbox generator's with histories (seed 7, taken {NOW:%Y-%m-%d %H:%M} UTC), mapped to a
snapshot with history and loaded from a pickle (load time apart); the backtest runs the bundled example
policy (`config/policies`) over the last N days, a simulated worker cycle every hour of working time
(Europe/Berlin, 09:00-17:00, holidays of Berlin), including every metric of the report. CPU is the measured
process's CPU time (one core); peak RSS is its `ru_maxrss` (snapshot, simulated world and report). The
event-driven replay evaluates a deal only at its events, wake-ups and budget retries: the evaluations column
compares that with a day-by-day replay (every deal at every cycle).

{_HEADER}
{table}

Targets: 10,000 deals x 180 days under 60 s and 100,000 x 90 days under 10 minutes of one core, peak RSS
under 1 GB. The CPU targets are met. **The 1 GB target is not met at 100,000 deals**: the peak is mostly
the snapshot itself, about 10 KB of Python objects per deal at this history depth (some 12 activities and
23 history rows per deal, each an object with its own datetime and strings), plus the per-deal timelines
and the policy's simulated tasks. Getting under it needs a compact store for activities and history rows
(epoch seconds and interned values in arrays, read by the timelines) in place of one object per row; not
done yet.
"""
    write_section(HEADING, section)


if __name__ == "__main__":
    main()
