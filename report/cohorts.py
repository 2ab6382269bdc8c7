"""The rollout's cohorts as the ledger has them, and what the one pass over the mirror adds for them.

Read in SQL before the mirror is scanned (``gather``): per cohort (enforced: written to the CRM; shadow:
decided and held) the deals decided for, the tasks and their owners, the deals stopped, and each deal's
first follow-up task in the period; the shadow decisions still held. The scan (``report.hygiene``) then
calls ``observe`` on every mirrored deal it decodes anyway: for a deal with a follow-up it notes the first
customer signal after it, and for a deal with held decisions it asks the engine which of them it still
decides now. Nothing is decoded twice.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from policies.engine import evaluate
from policies.facts import TOUCH
from policies.model import Activity, Deal, Owner
from policies.policy import Policy
from report.sources import ReportRequest
from report.sql import json_text
from store.schema import audit, ledger

ENFORCE, SHADOW = "enforce", "shadow"
MODES = (ENFORCE, SHADOW)


@dataclass(frozen=True, slots=True)
class Held:
    """A decision recorded in shadow (ledger status ``shadow``) and not applied since."""

    key: str
    rule: str
    kind: str
    at: datetime
    cohort: str  # the cohort it was recorded under: outside (the rollout), all (the account in shadow)


@dataclass
class ModeFigures:
    deals: int = 0  # deals with a decision recorded in the period
    tasks: int = 0  # create_task decisions
    owners: int = 0  # distinct task owners
    stopped: int = 0  # deals the stop rule moved to "stopped"


@dataclass
class Wanted:
    """What the scan should look at: first follow-ups (by deal, one per mode) and held decisions."""

    followups: dict[tuple[str, str], dict[str, datetime]] = field(default_factory=dict)
    held: dict[tuple[str, str], list[Held]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.followups or self.held)


@dataclass
class Observed:
    """What the scan found for the wanted deals (merged across the scan's processes)."""

    next_signal: dict[tuple[str, str, str], datetime | None] = field(
        default_factory=dict
    )  # account, deal, mode
    still: list[tuple[str, str, Held]] = field(default_factory=list)  # held decisions the engine still makes
    still_by: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, kind) -> held and still made

    def merge(self, other: Observed) -> None:
        self.next_signal.update(other.next_signal)
        self.still.extend(other.still)
        self.still_by.update(other.still_by)


@dataclass
class Cohorts:
    figures: dict[str, ModeFigures]
    by_cohort: list[dict[str, Any]]  # mode, cohort, decisions, deals (from the audit)
    wanted: Wanted
    held_total: int


def _mode(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.case((column == "shadow", SHADOW), else_=ENFORCE)


def gather(request: ReportRequest) -> Cohorts:
    names = [a.name for a in request.accounts]
    dialect = request.dialect
    in_period = sa.and_(
        ledger.c.account.in_(names),
        ledger.c.created_at >= request.since,
        ledger.c.created_at <= request.now,
        ledger.c.status.in_(("applied", "shadow")),
    )
    mode = _mode(ledger.c.status).label("mode")
    figures = {m: ModeFigures() for m in MODES}
    wanted = Wanted()
    with request.store.engine.connect() as c:
        for m, deals in c.execute(
            sa.select(mode, sa.func.count(sa.distinct(ledger.c.account + ":" + ledger.c.deal_id)))
            .where(in_period)
            .group_by(mode)
        ):
            figures[m].deals = deals
        owner = json_text(ledger.c.action, dialect, "owner_id")
        tasks = sa.and_(in_period, ledger.c.kind == "create_task")
        for m, n, owners in c.execute(
            sa.select(mode, sa.func.count(), sa.func.count(sa.distinct(ledger.c.account + ":" + owner)))
            .where(tasks)
            .group_by(mode)
        ):
            figures[m].tasks, figures[m].owners = n, owners
        state = json_text(ledger.c.action, dialect, "fields", "followup_state")
        stops = sa.and_(in_period, ledger.c.kind == "set_deal_fields", state == "stopped")
        for m, n in c.execute(
            sa.select(mode, sa.func.count(sa.distinct(ledger.c.account + ":" + ledger.c.deal_id)))
            .where(stops)
            .group_by(mode)
        ):
            figures[m].stopped = n
        first = c.execution_options(yield_per=5000).execute(
            sa.select(ledger.c.account, ledger.c.deal_id, mode, sa.func.min(ledger.c.created_at))
            .where(tasks)
            .group_by(ledger.c.account, ledger.c.deal_id, mode)
        )
        for account, deal_id, m, at in first:
            wanted.followups.setdefault((account, deal_id), {})[m] = at
        held = c.execution_options(yield_per=5000).execute(
            sa.select(
                ledger.c.account,
                ledger.c.deal_id,
                ledger.c.key,
                ledger.c.rule_id,
                ledger.c.kind,
                ledger.c.created_at,
                ledger.c.cohort,
            ).where(ledger.c.account.in_(names), ledger.c.status == "shadow")
        )
        held_total = 0
        for account, deal_id, key, rule, kind, at, cohort in held:
            wanted.held.setdefault((account, deal_id), []).append(Held(key, rule, kind, at, cohort or "all"))
            held_total += 1
        audit_mode = audit.c.mode.label("mode")
        cohort = sa.func.coalesce(audit.c.cohort, "all").label("cohort")
        by_cohort = [
            {"mode": m, "cohort": name, "decisions": n, "deals": d}
            for m, name, n, d in c.execute(
                sa.select(audit_mode, cohort, sa.func.count(), sa.func.count(sa.distinct(audit.c.deal_id)))
                .where(
                    audit.c.account.in_(names),
                    audit.c.at >= request.since,
                    audit.c.at <= request.now,
                    audit.c.outcome == "planned",
                )
                .group_by(audit_mode, cohort)
            )
        ]
    return Cohorts(figures, by_cohort, wanted, held_total)


def observe(
    found: Observed,
    wanted: Wanted,
    account: str,
    policy: Policy,
    deal: Deal,
    owner: Owner | None,
    now: datetime,
) -> None:
    """Called by the mirror scan for every deal it decodes; cheap for deals that are not wanted."""
    key = (account, deal.id)
    followups = wanted.followups.get(key)
    if followups:
        for mode, at in followups.items():
            found.next_signal[(account, deal.id, mode)] = _next_signal(deal, at, now)
    held = wanted.held.get(key)
    if held:
        decided = {a.key for a in evaluate(policy, deal, now, owner).actions}
        for item in held:
            if item.key in decided:
                found.still.append((account, deal.id, item))
                found.still_by[(item.rule, item.kind)] += 1


def _moment(activity: Activity) -> datetime:
    return activity.occurred_at


def _next_signal(deal: Deal, after: datetime, now: datetime) -> datetime | None:
    """The first customer signal (a reply, an inbound or connected call, a booked or held meeting) after
    ``after`` and not after ``now``: the engine's own definition (``policies.facts``)."""
    activities = deal.activities  # oldest first
    for activity in activities[bisect_right(activities, after, key=_moment) :]:
        if activity.occurred_at > now:
            return None
        if TOUCH[activity.kind, activity.direction, activity.outcome] == "signal":
            return activity.occurred_at
    return None
