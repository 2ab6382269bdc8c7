"""Chaos suite helpers: run the real ``followup`` command in a subprocess with a memory and CPU ceiling.

The ceilings are how the suite measures "fails fast with bounded memory": a run that blows up past them
is killed by the kernel (and the test fails on its exit status), so no wall-clock assertion is needed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space: the interpreter with every import needs about 400 MiB
CPU_SECONDS = 20  # a rejected file costs well under 2 s of CPU; a bomb or a hang would run for minutes


def _limits(cpu_seconds: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    return apply


def followup(
    args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, cpu_seconds: int = CPU_SECONDS
) -> subprocess.CompletedProcess[str]:
    """``followup ARGS`` as a user runs it, under the ceilings above; stdout and stderr captured."""
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        preexec_fn=_limits(cpu_seconds),  # resource limits only (set between fork and exec)
        timeout=300,  # a safety net for a broken test, not the measure (the CPU limit is)
        check=False,
    )
