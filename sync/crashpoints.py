"""A test hook for crash safety: kill the process at a named point of the cycle.

``FOLLOWUP_CRASH_AT=<point>:<n>`` makes the worker SIGKILL itself the ``n``-th time (1-based) it reaches
``<point>``; the crash test uses it to cut a cycle at every step where state could be half-written, then
restarts the worker and checks the CRM. Nothing else reads this variable, and without it the hook is inert.
The points are the ``POINTS`` below, reached in that order within a cycle (several of them once per batch).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Mapping

ENV = "FOLLOWUP_CRASH_AT"

POINTS = (
    "lease_acquired",  # before anything else is read or written
    "directory_read",
    "recovery_checked",  # after the CRM was asked about intents left by an earlier crash
    "batch_stored",  # after each pulled batch and its cursor are committed
    "pull_finished",
    "audit_recorded",  # after each chunk's decisions are in the audit trail
    "intents_recorded",  # after each apply batch's intents are committed, before the CRM is called
    "crm_applied",  # after the CRM wrote a batch, before its outcomes are committed
    "outcomes_recorded",  # after each batch's outcomes and write-through are committed
    "run_finished",  # after the run is recorded, before the lease is released
)


class CrashPoints:
    """Counts the points reached; SIGKILLs the process at the configured one."""

    def __init__(self, spec: str | None = None) -> None:
        self._target: tuple[str, int] | None = None
        if spec:
            point, _, nth = spec.partition(":")
            if point not in POINTS:
                raise ValueError(f"{ENV}: unknown point {point!r}; known: {', '.join(POINTS)}")
            self._target = (point, int(nth or "1"))
        self._seen: Counter[str] = Counter()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CrashPoints:
        return cls(environ.get(ENV))

    def reached(self, point: str) -> None:
        self._seen[point] += 1
        if self._target == (point, self._seen[point]):
            os.kill(os.getpid(), signal.SIGKILL)
