"""Real ``followup`` processes for the chaos tests: started together behind a barrier, outputs collected.

``start_together`` launches each command as its own Python process that imports the worker, says it is
ready and waits for a go-file; once every process is ready the go-file appears, so they all enter
``followup`` at the same instant (within a few milliseconds), which is what two workers started by one
deploy do. Outputs are read from files, so a chatty process never blocks on a full pipe.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Run by each process: import what a worker imports, report ready, wait for the go-file, run `followup`.
_WAIT_THEN_RUN = """
import os, sys, time
ready, go = sys.argv[1], sys.argv[2]
import cli, worker, store, sync.cycle, connectors.hubspot, connectors.salesforce  # the slow imports first
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
sys.argv = ["followup", *sys.argv[3:]]
cli.main()
"""


@dataclass
class Finished:
    """One process after it ended: exit status and everything it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def finish(self, timeout: float) -> Finished:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return Finished(code, self.stdout.read_text(), self.stderr.read_text())

    def log_lines(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)


def start_together(
    commands: Sequence[Sequence[str]], folder: Path, env: Mapping[str, str] | None = None
) -> list[Started]:
    """Start one process per ``followup`` argument list; returns once all of them were released at once."""
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    started: list[Started] = []
    ready_files: list[Path] = []
    for number, args in enumerate(commands):
        ready = folder / f"ready-{number}"
        out, err = folder / f"stdout-{number}", folder / f"stderr-{number}"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", _WAIT_THEN_RUN, str(ready), str(go), *args],
                cwd=REPO,
                env={**os.environ, **(env or {})},
                stdout=stdout,
                stderr=stderr,
            )
        started.append(Started(process, out, err))
        ready_files.append(ready)
    deadline = time.monotonic() + 120  # a liveness limit for slow machines, not a timing assertion
    while not all(path.exists() for path in ready_files):
        dead = [s for s in started if s.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            for s in started:
                s.process.kill()
            details = [s.log_lines()[-2000:] for s in dead]
            raise AssertionError(f"a worker died or hung before the barrier: {details}")
        time.sleep(0.01)
    go.touch()
    return started
