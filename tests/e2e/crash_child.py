"""The crash test's subject: one ``worker.run_once`` in a child process, on the sandbox's frozen clock.

Run as ``python -m tests.e2e.crash_child SETTINGS SANDBOX_URL``; ``FOLLOWUP_CRASH_AT`` in its environment
makes it SIGKILL itself at that point of the cycle (see ``sync/crashpoints.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from crm_sandbox.control_client import SandboxControl

import worker


def main(settings: str, sandbox_url: str) -> int:
    with SandboxControl(sandbox_url) as control:
        results = worker.run_once(Path(settings), clock=control.clock)
    return 0 if results and all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
