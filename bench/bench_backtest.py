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


def _load(path: Path) -> tuple[Any, dict[str, int]]:
    """The snapshot made ready for the replay (``policies.backtest.prepare_parts``) one frame at a time, so
    that only one frame of deals and history rows exists as objects at once; and what it held."""
    from policies.backtest import prepare_parts

    counts = {"activities": 0, "history_rows": 0}
    with path.open("rb") as file:
        crm, owners, pipelines, taken_at, count = pickle.load(file)

        def parts() -> Any:
            loaded = 0
            while loaded < count:
                chunk, found = pickle.load(file)
                loaded += len(chunk)
                counts["activities"] += sum(len(d.activities) for d in chunk)
                counts["history_rows"] += sum(len(h.changes) for h in found.values())
                yield chunk, found

        prepared = prepare_parts(crm, taken_at, owners, pipelines, parts())
    return prepared, counts


def _measure(path: Path, days: int) -> dict[str, Any]:
    import policies.replay as replay_module
    from policies import engine
    from policies.backtest import Period, run_backtest
    from policies.loader import load_policy
    from policies.sweep import variants

    started = time.perf_counter()
    gc.disable()
    prepared, counts = _load(path)
    gc.enable()
    loaded = time.perf_counter() - started
    evaluations = 0
    evaluate = engine.evaluate

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal evaluations
        evaluations += 1
        return evaluate(*args, **kwargs)

    # The replay calls the engine through its own module global: swapping that global counts its calls.
    vars(replay_module)["evaluate"] = counting
    chosen = variants([("config/policies", load_policy(ROOT / "config" / "policies"))], [])
    period = Period(NOW.date() - timedelta(days=days), NOW.date(), timedelta(hours=1))
    cpu, wall = time.process_time(), time.perf_counter()
    report = run_backtest(prepared, chosen, period)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    [variant] = report["variants"]
    return {
        "deals": len(prepared.lines),
        "days": days,
        "history_rows": counts["history_rows"],
        "activities": counts["activities"],
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
snapshot with history and loaded from a pickle a frame of 2,000 deals at a time straight into the replay's
timelines (`policies.backtest.prepare_parts`; load time apart); the backtest runs the bundled example
policy (`config/policies`) over the last N days, a simulated worker cycle every hour of working time
(Europe/Berlin, 09:00-17:00, holidays of Berlin), including every metric of the report. CPU is the measured
process's CPU time (one core); peak RSS is its `ru_maxrss` (snapshot, simulated world and report). The
event-driven replay evaluates a deal only at its events, wake-ups and budget retries: the evaluations column
compares that with a day-by-day replay (every deal at every cycle).

{_HEADER}
{table}

Targets: 10,000 deals x 180 days under 60 s and 100,000 x 90 days under 10 minutes of one core, peak RSS
under 1 GB. Memory: a timeline keeps its deal's changes and activities compactly (moments as microseconds
in arrays, field names and activity kinds, directions and outcomes as small codes, activity ids and
contacts packed in one bytes object, equal dates and numbers shared across deals), materialises them when a
deal is rebuilt and keeps the rebuilt stretches of the 16,384 deals used last (`SegmentCache`); the
snapshot is read in frames, so its objects never all exist at once (about 480 MB of the peak at 100,000
deals are the prepared timelines). The replay's simulated world keeps each deal's tasks (closed ones too:
the agreed-interval rule chains the next follow-up on the ones done) packed in one bytes object
(`policies.packed_tasks`), lets a stopped deal's state go, and a cycle holds only the deals with actions,
as their id, amount and stage, until the budgets are applied (the first cycle evaluates most of the
pipeline). The wall time depends on the machine's load (other work sharing the two cores); CPU time is
the figure to compare.
"""
    write_section(HEADING, section)


if __name__ == "__main__":
    main()
