"""Benchmark the sandbox dataset generator: generate, save and load at 10,000 and 100,000 deals.

    .venv/bin/python -m bench.bench_dataset                  # print a markdown table
    .venv/bin/python -m bench.bench_dataset --write          # also replace our section of docs/benchmarks.md
    .venv/bin/python -m bench.bench_dataset --sizes 1000     # quick run

The issue's target: 100,000 deals with about 1,000,000 activities generate in under a minute, and a saved
dataset loads in a few seconds. Each size runs in this process one after the other; timings are wall-clock
``time.perf_counter`` of one run (generation is deterministic, so repeated runs vary only with the machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from crm_sandbox.dataset import generate, load, save

from bench.harness import machine, write_section

SECTION = "## Sandbox dataset generator"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SEED = 7


def run(sizes: list[int]) -> list[dict[str, float]]:
    rows = []
    for deals in sizes:
        started, cpu = time.perf_counter(), time.process_time()
        dataset = generate(SEED, deals, NOW)
        generated, generated_cpu = time.perf_counter() - started, time.process_time() - cpu
        with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
            directory = Path(tmp)
            started = time.perf_counter()
            save(dataset, directory)
            saved = time.perf_counter() - started
            size_mb = (directory / "dataset.pickle").stat().st_size / 1e6
            started, cpu = time.perf_counter(), time.process_time()
            loaded = load(directory)
            loading, loading_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert len(loaded.activities) == len(dataset.activities)
        rows.append(
            {
                "deals": deals,
                "activities": len(dataset.activities),
                "contacts": len(dataset.contacts),
                "generate_s": generated,
                "generate_cpu_s": generated_cpu,
                "load_cpu_s": loading_cpu,
                "save_s": saved,
                "load_s": loading,
                "file_mb": size_mb,
            }
        )
        print(
            f"{deals:>7} deals: generate {generated:.1f}s (cpu {generated_cpu:.1f}s), save {saved:.1f}s, "
            f"load {loading:.1f}s (cpu {loading_cpu:.1f}s)",
            file=sys.stderr,
        )
        del dataset, loaded
    return rows


def markdown(rows: list[dict[str, float]], command: str) -> str:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        SECTION,
        "",
        f"Command: `{command}` (seed {SEED}, now {NOW.isoformat()}).",
        f"Machine: {machine()}; peak RSS {peak_mb:,.0f} MB; "
        f"load average at the end {os.getloadavg()[0]:.1f} (CPU time is fairer on a busy machine).",
        "",
        "| deals | activities | contacts | generate (wall / CPU) | save | load (wall / CPU) | file |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['deals']:,.0f} | {row['activities']:,.0f} | {row['contacts']:,.0f} "
            f"| {row['generate_s']:.1f} s / {row['generate_cpu_s']:.1f} s | {row['save_s']:.1f} s "
            f"| {row['load_s']:.1f} s / {row['load_cpu_s']:.1f} s "
            f"| {row['file_mb']:.0f} MB |"
        )
    lines += [
        "",
        "Target (issue 3): 100,000 deals / ~1,000,000 activities generate in under 60 s and load in a few",
        "seconds. Loading is mostly building the frozen records (see sandbox/dataset_files.py).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--write", action="store_true", help="replace our section of docs/benchmarks.md")
    args = parser.parse_args()
    command = ".venv/bin/python -m bench.bench_dataset" + (" --write" if args.write else "")
    if args.sizes != [10_000, 100_000]:
        command += " --sizes " + " ".join(map(str, args.sizes))
    section = markdown(run(args.sizes), command)
    print(section)
    if args.write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
