"""What the benchmarks share: where their report goes, how a section of it is replaced, how the machine
is described, how a sandbox is started in a process of its own for a benchmark to measure, and the
command line of the sandbox throughput benchmarks.

Each benchmark owns one ``## `` section of docs/benchmarks.md; ``write_section`` replaces it (or appends
it) and leaves every other section as it was.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"
FOLLOWUP = ROOT / ".venv" / "bin" / "followup"
DATASET_CACHE = ROOT / ".sandbox-data"

__all__ = [
    "BENCHMARKS_DOC",
    "DATASET_CACHE",
    "FOLLOWUP",
    "ROOT",
    "SimulatedTime",
    "free_port",
    "machine",
    "serve_hubspot_sandbox",
    "serve_salesforce_sandbox",
    "start_hubspot_sandbox",
    "throughput_main",
    "write_section",
]


def machine() -> str:
    """``CPython 3.11.9, 2 CPUs, x86_64; measured 2026-03-02``: what a section's Machine line starts with."""
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}; measured {datetime.now(UTC):%Y-%m-%d}"
    )


def write_section(heading: str, section: str, path: Path = BENCHMARKS_DOC) -> None:
    """Replace the section of ``path`` under the ``heading`` line (or append it), leaving the others."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + section + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    path.write_text(new, encoding="utf-8")


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SimulatedTime:
    """A monotonic clock that moves only when slept on: rate-limit and retry waits cost no wall time and
    add up to what the pacing would take at the portal's published limits."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def start_hubspot_sandbox(**sandbox: Any) -> tuple[multiprocessing.Process, Connection, str, str]:
    """``serve_hubspot_sandbox(**sandbox)`` in a daemon child process: the process, this side of its pipe
    (send ``"stop"`` when done), and the sandbox's base URL and access token."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_hubspot_sandbox, args=(child,), kwargs=sandbox, daemon=True)
    server.start()
    base_url, token = parent.recv()
    return server, parent, base_url, token


def serve_hubspot_sandbox(conn: Connection, **sandbox: Any) -> None:
    """A child process's work: run ``running_hubspot_sandbox(**sandbox)`` and send ``(base_url, token)``,
    then answer ``"stats"`` (the sandbox's counters) and ``"reset"`` (zero them) until ``"stop"``."""
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(**sandbox) as hs:
        conn.send((hs.base_url, hs.access_token))
        while True:
            message = conn.recv()
            if message == "stop":
                break
            if message == "stats":
                conn.send(hs.control.stats())
            elif message == "reset":
                hs.control.reset_stats()
                conn.send("ok")


def salesforce_settings(
    store_url: str, credentials: tuple[str, ...], policy: Path, *, extra: str = ""
) -> str:
    """A settings file with one Salesforce account ``demo`` on the sandbox whose ``credentials``
    ``serve_salesforce_sandbox`` sent (JWT bearer, the generator's stage ids); ``extra`` is YAML indented
    for the account (e.g. ``"    apply_batch_size: 12000\\n"``)."""
    import json

    from crm_sandbox.pipelines import stage_ids_by_name

    instance_url, ca_file, consumer_key, username, key_file = credentials
    return (
        f"store: {{url: '{store_url}'}}\n"
        "accounts:\n  demo:\n    crm: salesforce\n"
        f"    policy: '{policy}'\n" + extra + "    salesforce:\n"
        f"      instance_url: '{instance_url}'\n      login_url: '{instance_url}'\n"
        f"      ca_file: '{ca_file}'\n"
        "      auth:\n        kind: jwt_bearer\n"
        f"        consumer_key: '{consumer_key}'\n        username: '{username}'\n"
        f"        private_key_file: '{key_file}'\n"
        f"      stage_ids: {json.dumps(stage_ids_by_name())}\n"
    )


def serve_salesforce_sandbox(conn: Connection, **sandbox: Any) -> None:
    """A child process's work: run ``running_salesforce_sandbox(**sandbox)`` and send what a settings file
    needs to reach it (instance URL, CA file, JWT consumer key, username, private key file), then wait for
    ``"stop"``; ``"token"`` answers an access token for changes made behind the worker's back."""
    from crm_sandbox.salesforce import running_salesforce_sandbox

    with running_salesforce_sandbox(**sandbox) as box:
        conn.send(
            (
                box.instance_url,
                str(box.ca_file),
                box.consumer_key,
                box.username,
                str(box.private_key_file),
            )
        )
        while (message := conn.recv()) != "stop":
            if message == "token":
                conn.send(box.org.issue_token())


def throughput_main(
    module: str,
    description: str,
    heading: str,
    default_threads: int,
    run: Callable[[int, int, float], Any],
    markdown: Callable[[Any, str, int, int, float], str],
) -> None:
    """``python -m bench.<module> [--deals N] [--threads N] [--seconds S] [--write]``: run, print the
    section (its Command line repeats the options that differ from the defaults), write it if asked."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=default_threads)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--write", action="store_true", help="replace our section of docs/benchmarks.md")
    args = parser.parse_args()
    command = f".venv/bin/python -m bench.{module}" + (" --write" if args.write else "")
    if (args.deals, args.threads, args.seconds) != (100_000, default_threads, 10.0):
        command += f" --deals {args.deals} --threads {args.threads} --seconds {args.seconds:g}"
    figures = run(args.deals, args.threads, args.seconds)
    section = markdown(figures, command, args.deals, args.threads, args.seconds)
    print(section)
    if args.write:
        write_section(heading, section)
    sys.stdout.flush()
