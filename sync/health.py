"""What ``/healthz`` and ``followup_cursor_age_seconds`` report, read from the state store when asked.

Both are read from the state store when asked (a scrape, a probe), not remembered by this process: the age
is right after a restart, and the same whichever worker of a fleet moved the cursor. An account is
**degraded** when

* its cursor has not moved for ``stale_runs`` of its scheduled runs (the cursor moves with every stored
  batch of a pull, so a long full pull in progress keeps it young; a cron schedule's quiet hours are not
  runs, so a weekend without runs is not staleness), or
* it is blocked on configuration (the CRM said ``FixConfiguration``; cycles wait for a configuration
  change).

An account without a cursor yet counts its age from the moment the worker started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from store import StateStore

# The scheduled runs between two moments, counting no further than ``cap``.
RunsBetween = Callable[[datetime, datetime, int], int]


@dataclass(frozen=True)
class Watched:
    """One account as the health check sees it: its name, a description and a count of its schedule."""

    account: str
    schedule: str  # as people read it: "every 15 min", "cron */20 7-19 * * mon-fri (Europe/Berlin)"
    runs_between: RunsBetween


@dataclass(frozen=True)
class AccountHealth:
    account: str
    cursor_age_s: float
    problems: tuple[str, ...]


class Health:
    def __init__(
        self,
        store: StateStore,
        accounts: Sequence[Watched],
        clock: Callable[[], datetime],
        *,
        stale_runs: int,
        started_at: datetime,
    ) -> None:
        self._store = store
        self._accounts = tuple(accounts)
        self._clock = clock
        self._stale_runs = stale_runs
        self._started_at = started_at

    def check(self) -> list[AccountHealth]:
        now = self._clock()
        out = []
        for watched in self._accounts:
            name = watched.account
            moved = self._store.cursor_state(name).updated_at
            since = moved or self._started_at
            problems: list[str] = []
            missed = watched.runs_between(since, now, self._stale_runs)
            if missed >= self._stale_runs:
                what = (
                    f"cursor last moved {since.isoformat()}"
                    if moved
                    else "no cursor since the worker started"
                )
                problems.append(
                    f"{name}: {what}, {missed} or more scheduled runs ago ({watched.schedule}); "
                    f"degraded after {self._stale_runs}"
                )
            blocked = self._store.blocked(name)
            if blocked is not None:
                problems.append(
                    f"{name}: blocked on configuration since {blocked.at.isoformat()}: {blocked.reason}"
                )
            out.append(AccountHealth(name, max(0.0, (now - since).total_seconds()), tuple(problems)))
        return out
