"""``run_backtest``: replay policy variants over a snapshot's history and measure what they would have done.

Pure: the snapshot, the variants and the period go in, one JSON-ready report comes out (its schema is
``docs/backtest.schema.json``; docs/backtest.md explains every number). Per variant, for the account and
per owner and team:

* **stops**: the deals the policy would have closed lost or nurtured, judged by what really happened to
  them afterwards (the recorded stage changes up to the end of the history): a **false kill** was won or
  moved to a later stage (for a nurtured deal: before the policy reactivated it); a **true stop** was lost
  anyway, and the days from the stop to the real loss are pipeline attention saved; the rest is
  unresolved (or reactivated, for nurture). Precedence: won, then moved forward, then lost.
* **busy work**: new tasks per owner per working day of the owner's calendar (mean, 95th percentile,
  days at the cap), tasks held back by budgets (each once), tasks that expired;
* **nurture**: enrolments, reactivations, and reactivated deals later won;
* **API calls** enforcing it would have cost, per day and per CRM (``policies.api_costs``);
* **next-step completeness** over time (weekly samples) by the variant's own next-step rule.

And once for the history, independent of any policy: **agreed-interval compliance** as it really happened
(``policies.compliance``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from policies.api_costs import CRMS, cycle_calls
from policies.codec import Snapshot
from policies.compliance import TOLERANCE, VERDICTS, Obligation, next_step_complete, obligations
from policies.facts import TOUCH
from policies.history import DealHistory, DealTimeline, HistoryField, StageBook, TimelineBuilder, timelines
from policies.model import (
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    DealField,
    DeferredAction,
    EnrolInNurture,
    Evidence,
    FollowupState,
    Owner,
    Pipeline,
    ReactivateFromNurture,
    SetDealFields,
    Stage,
)
from policies.policy import Policy
from policies.replay import Evaluated, replay, working_ticks
from policies.sweep import Variant

FORMAT = "crm-followup-backtest/1"
NO_TEAM = "(no team)"
UNASSIGNED = "(unassigned)"
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # in the policy calendar
    last: date
    step: timedelta


@dataclass(slots=True)
class _Stop:
    """A deal the policy stopped or nurtured, as recorded when it happened."""

    deal_id: str
    deal_name: str
    owner_id: str | None
    kind: str  # stop | nurture
    rule_id: str
    reason: str
    at: datetime
    amount: float | None
    summary: str
    evidence: tuple[Evidence, ...]
    ended_at: datetime | None = None  # a nurture episode ends when the policy reactivates the deal


@dataclass(slots=True)
class _Recorder:
    """A ``ReplayObserver`` that keeps counters and the stops, not the actions."""

    policy: Policy
    owners: Mapping[str, Owner]
    created: dict[str, Counter[date]] = field(default_factory=lambda: defaultdict(Counter))
    by_rule: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    expired: Counter[str] = field(default_factory=Counter)
    deferred: dict[str, str] = field(default_factory=dict)  # task key -> owner key
    enrolments: Counter[str] = field(default_factory=Counter)
    reactivations: Counter[str] = field(default_factory=Counter)
    stops: list[_Stop] = field(default_factory=list)
    open_nurture: dict[str, _Stop] = field(default_factory=dict)
    reactivated: list[tuple[str, str, datetime]] = field(default_factory=list)  # deal, owner, when
    calls: dict[date, dict[str, Counter[str]]] = field(default_factory=dict)
    daily: dict[date, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def tick(
        self, moment: datetime, evaluated: Sequence[Evaluated], deferred: Sequence[DeferredAction]
    ) -> None:
        day = self.policy.calendar_for(None).local_date(moment)
        for held in deferred:
            self.deferred.setdefault(held.action.key, _key(_task_owner(held)))
        if not evaluated:
            return
        all_actions = [a for item in evaluated for a in item.actions]
        spent = self.calls.setdefault(day, {crm: Counter() for crm in CRMS})
        for crm, counts in cycle_calls(all_actions).items():
            spent[crm].update(counts)
        for item in evaluated:
            deal = item.deal
            owner = _key(deal.owner_id)
            calendar = self.policy.calendar_for(self.owners.get(deal.owner_id or ""))
            for action in item.actions:
                if isinstance(action, CreateTask):
                    task_owner = _key(action.owner_id or deal.owner_id)
                    self.created[task_owner][calendar.local_date(moment)] += 1
                    self.by_rule[task_owner][action.rule_id] += 1
                    self.daily[day]["tasks_created"] += 1
                elif isinstance(action, CloseTask) and action.reason is CloseReason.EXPIRED:
                    self.expired[owner] += 1
                elif isinstance(action, EnrolInNurture):
                    self.enrolments[owner] += 1
                elif isinstance(action, ReactivateFromNurture):
                    self.reactivations[owner] += 1
                elif isinstance(action, SetDealFields):
                    self._state_change(moment, day, item, action)

    def _state_change(self, moment: datetime, day: date, item: Evaluated, action: SetDealFields) -> None:
        state = action.fields.get(DealField.FOLLOWUP_STATE)
        deal = item.deal
        if state == FollowupState.ACTIVE:
            episode = self.open_nurture.pop(deal.id, None)
            if episode is not None:
                episode.ended_at = moment
                self.reactivated.append((deal.id, _key(deal.owner_id), moment))
            return
        if state not in (FollowupState.STOPPED, FollowupState.NURTURE):
            return
        kind = "stop" if state == FollowupState.STOPPED else "nurture"
        stop = _Stop(
            deal.id,
            deal.name,
            deal.owner_id,
            kind,
            action.rule_id,
            str(action.fields.get(DealField.FOLLOWUP_REASON) or ""),
            moment,
            deal.amount,
            action.explanation.summary,
            action.explanation.evidence,
        )
        self.stops.append(stop)
        self.daily[day]["stopped" if kind == "stop" else "nurtured"] += 1
        if kind == "nurture":
            self.open_nurture[deal.id] = stop


def _task_owner(held: DeferredAction) -> str | None:
    action = held.action
    return action.owner_id if isinstance(action, CreateTask) else None


def _key(owner_id: str | None) -> str:
    return owner_id or UNASSIGNED


# --------------------------------------------------------------------------------------------------
# What became of a stop
# --------------------------------------------------------------------------------------------------


def _rank(stage: Stage) -> float:
    return stage.probability if stage.probability is not None else float(stage.display_order)


def _stage_at(timeline: DealTimeline, book: StageBook, moment: datetime) -> Stage:
    deal = timeline.deal
    recorded, stage_id = timeline.value(HistoryField.STAGE, moment)
    known, pipeline = timeline.value(HistoryField.PIPELINE, moment)
    pipeline_id = str(pipeline) if known and pipeline else deal.pipeline_id
    return book.get(pipeline_id, str(stage_id)) if recorded and stage_id else deal.stage


@dataclass(frozen=True, slots=True)
class _Change:
    at: datetime
    stage: Stage


def _decisive(stop: _Stop, timeline: DealTimeline, book: StageBook, end: datetime) -> dict[str, _Change]:
    """The first win, move to a later open stage, and loss after the stop (up to ``end``), as recorded."""
    base = _rank(_stage_at(timeline, book, stop.at))
    found: dict[str, _Change] = {}
    for at, _ in timeline.value_changes(HistoryField.STAGE):
        if not stop.at < at <= end:
            continue
        stage = _stage_at(timeline, book, at)
        if stage.is_won:
            found.setdefault("won", _Change(at, stage))
        elif stage.is_closed:
            found.setdefault("lost", _Change(at, stage))
        elif _rank(stage) > base:
            found.setdefault("moved_forward", _Change(at, stage))
    return found


def _judge(
    stop: _Stop, timeline: DealTimeline, book: StageBook, history_end: datetime, day: Any
) -> dict[str, Any]:
    """The report entry of one stop: what the policy saw, and what really happened afterwards."""
    end = stop.ended_at or history_end
    found = _decisive(stop, timeline, book, end)
    outcome: str = "reactivated" if stop.ended_at is not None else "unresolved"
    for decisive in ("won", "moved_forward", "lost"):
        if decisive in found:
            outcome = decisive
            break
    after: list[dict[str, str]] = []
    signal = next(
        (
            a
            for a in timeline.activities()
            if stop.at < a.occurred_at <= end and TOUCH[a.kind, a.direction, a.outcome] == "signal"
        ),
        None,
    )
    if signal is not None:
        after.append(
            {"label": "customer signal", "value": f"{signal.kind} on {day(signal.occurred_at)} ({signal.id})"}
        )
    decided = found.get(outcome)
    if decided is not None:
        after.append({"label": "stage", "value": f"{decided.stage.id} on {day(decided.at)}"})
    lost = found.get("lost")
    if outcome == "moved_forward" and decided is not None and lost is not None and lost.at > decided.at:
        after.append({"label": "finally", "value": f"{lost.stage.id} on {day(lost.at)}"})
    days_saved = None
    if outcome == "lost" and decided is not None:
        days_saved = round((decided.at - stop.at).total_seconds() / 86400, 1)
    return {
        "deal_id": stop.deal_id,
        "deal_name": stop.deal_name,
        "owner_id": stop.owner_id,
        "kind": stop.kind,
        "rule": stop.rule_id,
        "reason": stop.reason,
        "stopped_at": stop.at.isoformat(),
        "stopped_on": day(stop.at),
        "amount": stop.amount,
        "stage": _stage_at(timeline, book, stop.at).id,
        "summary": stop.summary,
        "evidence": [{"label": e.label, "value": e.value} for e in stop.evidence],
        "outcome": outcome,
        "outcome_on": day(decided.at) if decided is not None else None,
        "after_the_stop": after,
        "days_saved": days_saved,
    }


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0.95 for p95); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean": round(sum(values) / len(values), 2) if values else 0.0,
        "p95": percentile(values, 0.95),
        "max": float(max(values, default=0)),
    }


def _business_days(policy: Policy, owner: Owner | None, first: date, last: date) -> list[date]:
    calendar = policy.calendar_for(owner)
    out, day = [], first
    while day <= last:
        if calendar.is_business_day(day):
            out.append(day)
        day += _DAY
    return out


@dataclass(slots=True)
class _Scope:
    """The figures of one scope (the account, an owner, a team) before they become JSON."""

    owners: set[str] = field(default_factory=set)
    stops: list[dict[str, Any]] = field(default_factory=list)
    obligations: list[Obligation] = field(default_factory=list)
    step_samples: list[bool] = field(default_factory=list)


def _busy(
    recorder: _Recorder, owner_keys: Iterable[str], days: Mapping[str, list[date]], cap: int
) -> dict[str, Any]:
    per_day: list[float] = []
    created = deferred = expired = working = 0
    by_rule: Counter[str] = Counter()
    held: Counter[str] = Counter(recorder.deferred.values())
    for owner in owner_keys:
        counts = recorder.created.get(owner, Counter())
        working_days = days.get(owner, [])
        working += len(working_days)
        extra = [n for d, n in counts.items() if d not in set(working_days)]
        per_day.extend([counts.get(d, 0) for d in working_days] + extra)
        created += sum(counts.values())
        by_rule.update(recorder.by_rule.get(owner, Counter()))
        deferred += held.get(owner, 0)
        expired += recorder.expired.get(owner, 0)
    return {
        "tasks_created": created,
        "working_days": working,
        "per_working_day": {
            "mean": round(created / working, 2) if working else 0.0,
            "p95": percentile(per_day, 0.95),
            "max": float(max(per_day, default=0)),
        },
        "days_at_cap": sum(1 for n in per_day if n >= cap),
        "deferred": deferred,
        "expired": expired,
        "by_rule": dict(sorted(by_rule.items())),
    }


def _stop_figures(stops: Sequence[dict[str, Any]]) -> dict[str, Any]:
    outcomes = Counter(s["outcome"] for s in stops)
    kills = [s for s in stops if s["outcome"] in ("won", "moved_forward")]
    true = [s for s in stops if s["outcome"] == "lost"]
    return {
        "stopped": sum(1 for s in stops if s["kind"] == "stop"),
        "nurtured": sum(1 for s in stops if s["kind"] == "nurture"),
        "false_kills": len(kills),
        "false_kill_amount": round(sum(s["amount"] or 0.0 for s in kills), 2),
        "false_kills_won": outcomes["won"],
        "true_stops": len(true),
        "days_saved": round(sum(s["days_saved"] or 0.0 for s in true), 1),
        "unresolved": outcomes["unresolved"],
        "reactivated": outcomes["reactivated"],
    }


def _compliance_figures(found: Sequence[Obligation]) -> dict[str, Any]:
    verdicts = Counter(o.verdict for o in found)
    late = [float(o.days_late) for o in found if o.days_late is not None]
    out: dict[str, Any] = {"agreements": len(found)}
    out.update({v: verdicts[v] for v in VERDICTS})
    out["business_days_late"] = _spread(late)
    return out


def _share(samples: Sequence[bool]) -> float | None:
    return round(sum(samples) / len(samples), 4) if samples else None


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A snapshot made ready for replaying: its deals as timelines (compact: the snapshot itself can go),
    and what the report says about it."""

    crm: str
    taken_at: datetime | None
    owners: tuple[Owner, ...]
    pipelines: tuple[Pipeline, ...]
    lines: list[DealTimeline]
    book: StageBook
    deals_with_history: int
    history_since: datetime | None = None
    untracked: tuple[str, ...] = ()


def prepare(snapshot: Snapshot) -> Prepared:
    """The snapshot's deals as timelines; a large snapshot is better read in parts (``prepare_parts``)."""
    lines, book = timelines(snapshot.deals, snapshot.pipelines, snapshot.history)
    history = snapshot.history
    return Prepared(
        snapshot.crm,
        snapshot.taken_at,
        snapshot.owners,
        snapshot.pipelines,
        lines,
        book,
        sum(1 for d in snapshot.deals if history is not None and d.id in history.deals),
        history.since if history is not None else None,
        history.untracked if history is not None else (),
    )


def prepare_parts(
    crm: str,
    taken_at: datetime | None,
    owners: Sequence[Owner],
    pipelines: Sequence[Pipeline],
    parts: Iterable[tuple[Sequence[Deal], Mapping[str, DealHistory]]],
    *,
    history_since: datetime | None = None,
    untracked: Sequence[str] = (),
) -> Prepared:
    """``prepare`` for a snapshot read in parts (deals with their histories): each part can be let go once
    its timelines are made, so the whole snapshot is never in memory as objects."""
    builder = TimelineBuilder(pipelines)
    lines: list[DealTimeline] = []
    with_history = 0
    for deals, histories in parts:
        for deal in deals:
            found = histories.get(deal.id)
            with_history += found is not None
            lines.append(builder.add(deal, found))
    return Prepared(
        crm,
        taken_at,
        tuple(owners),
        tuple(pipelines),
        lines,
        builder.book,
        with_history,
        history_since,
        tuple(untracked),
    )


def run_backtest(
    snapshot: Snapshot | Prepared, variants: Sequence[Variant], period: Period
) -> dict[str, Any]:
    """Replay every variant over the snapshot's history in ``period``; the report as a JSON-ready dict."""
    if not variants:
        raise ValueError("no policy to replay")
    prepared = snapshot if isinstance(snapshot, Prepared) else prepare(snapshot)
    owners = {o.id: o for o in prepared.owners}
    lines, book = prepared.lines, prepared.book
    reference = variants[0].policy
    calendar = reference.calendar_for(None)
    period_end = datetime.combine(period.last + _DAY, time(0), calendar.tz).astimezone(UTC)
    # Without the snapshot's moment, the history ends with its last event (or with the period).
    history_end = prepared.taken_at or max((t.last_event for t in lines), default=period_end)
    start = datetime.combine(period.first, time(0), calendar.tz).astimezone(UTC)
    end = min(period_end, history_end)
    owner_keys = _owner_keys(lines)
    teams = {key: _team(owners.get(key)) for key in owner_keys}
    report: dict[str, Any] = {
        "format": FORMAT,
        "snapshot": {
            "crm": prepared.crm,
            "taken_at": prepared.taken_at.isoformat() if prepared.taken_at else None,
            "deals": len(lines),
            "deals_with_history": prepared.deals_with_history,
            "owners": len(prepared.owners),
        },
        "period": {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "step_minutes": int(period.step.total_seconds() // 60),
            "time_zone": reference.calendar.time_zone,
            "history_end": history_end.isoformat(),
        },
        # the obligations are let go once counted: the replay needs the memory
        "compliance": _compliance_report(
            [o for t in lines for o in obligations(reference, t, owners, start, end, history_end)], teams
        ),
        "variants": [],
    }
    completeness: dict[str, tuple[list[dict[str, Any]], dict[str, list[bool]]]] = {}
    for variant in variants:
        report["variants"].append(
            _variant_report(
                variant, prepared, lines, book, owners, owner_keys, teams, period, history_end, completeness
            )
        )
    since = prepared.history_since
    report["history"] = {
        "since": since.isoformat() if since else None,
        "untracked_fields": sorted(prepared.untracked),
        "deals_without_history": len(lines) - prepared.deals_with_history,
        "unknown_stages": sorted(f"{p}/{s}" for p, s in book.unknown),
        "starts_before_history": bool(since and since > start),
    }
    return report


def history_notes(history: Mapping[str, Any]) -> list[str]:
    """What a report's ``history`` says about where its figures are approximate, as sentences for people
    (the HTML report's notes and ``followup backtest``'s)."""
    notes = []
    if history["untracked_fields"]:
        notes.append(
            "Approximated (no history kept; the current value throughout): "
            + ", ".join(history["untracked_fields"])
        )
    if history["starts_before_history"]:
        notes.append(
            f"The period starts before the history does ({history['since']}): early days are approximated."
        )
    if history["unknown_stages"]:
        notes.append(
            "Stages in the history but not in the pipelines (treated as open): "
            + ", ".join(history["unknown_stages"])
        )
    return notes


def _team(owner: Owner | None) -> str:
    return owner.team if owner is not None and owner.team else NO_TEAM


def _owner_keys(lines: Sequence[DealTimeline]) -> list[str]:
    keys: set[str] = set()
    for line in lines:
        keys.add(_key(line.deal.owner_id))
        keys.update(_key(str(v) if v else None) for _, v in line.value_changes(HistoryField.OWNER))
    return sorted(keys)


def _compliance_report(found: Sequence[Obligation], teams: Mapping[str, str]) -> dict[str, Any]:
    by_owner: dict[str, list[Obligation]] = defaultdict(list)
    by_team: dict[str, list[Obligation]] = defaultdict(list)
    for item in found:
        by_owner[_key(item.owner_id)].append(item)
        by_team[teams.get(_key(item.owner_id), NO_TEAM)].append(item)
    return {
        "tolerance_business_days": TOLERANCE,
        "account": _compliance_figures(found),
        "owners": {k: _compliance_figures(v) for k, v in sorted(by_owner.items())},
        "teams": {k: _compliance_figures(v) for k, v in sorted(by_team.items())},
    }


def _variant_report(
    variant: Variant,
    prepared: Prepared,
    lines: Sequence[DealTimeline],
    book: StageBook,
    owners: Mapping[str, Owner],
    owner_keys: Sequence[str],
    teams: Mapping[str, str],
    period: Period,
    history_end: datetime,
    completeness: dict[str, tuple[list[dict[str, Any]], dict[str, list[bool]]]],
) -> dict[str, Any]:
    policy = variant.policy
    calendar = policy.calendar_for(None)
    ticks = working_ticks(calendar, period.first, period.last, period.step, history_end)
    recorder = _Recorder(policy, owners)
    replay(policy, lines, owners, prepared.pipelines, ticks, recorder)
    day = calendar.local_day_name
    by_id = {line.deal.id: line for line in lines}
    judged = [_judge(stop, by_id[stop.deal_id], book, history_end, day) for stop in recorder.stops]
    last = min(period.last, calendar.local_date(history_end))
    keys = sorted({*owner_keys, *recorder.created, *recorder.expired})
    days = {k: _business_days(policy, owners.get(k), period.first, last) for k in keys}
    series, samples = _completeness(policy, lines, owners, period, history_end, completeness)
    cap = policy.budgets.max_new_tasks_per_owner_per_day

    def figures(scope_owners: Sequence[str]) -> dict[str, Any]:
        chosen = set(scope_owners)
        stops = [s for s in judged if _key(s["owner_id"]) in chosen]
        reactivated = [r for r in recorder.reactivated if r[1] in chosen]
        won_after = sum(
            1 for deal_id, _, at in reactivated if _won_after(by_id[deal_id], book, at, history_end)
        )
        step = [x for k in chosen for x in samples.get(k, [])]
        return {
            "stops": _stop_figures(stops),
            "busy_work": _busy(recorder, sorted(chosen), days, cap),
            "nurture": {
                "enrolments": sum(recorder.enrolments[k] for k in chosen),
                "reactivations": sum(recorder.reactivations[k] for k in chosen),
                "reactivated_then_won": won_after,
            },
            "next_step_completeness": _share(step),
        }

    team_members: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        team_members[teams.get(key, NO_TEAM)].append(key)
    return {
        "name": variant.name,
        "policy": variant.source,
        "settings": dict(variant.settings),
        "shadowed_by": list(variant.shadowed_by),
        "cycles": len(ticks),
        "account": figures(keys),
        "owners": {k: figures([k]) for k in keys},
        "teams": {t: figures(m) for t, m in sorted(team_members.items())},
        "false_kills": [s for s in judged if s["outcome"] in ("won", "moved_forward")],
        "true_stops": [s for s in judged if s["outcome"] == "lost"],
        "next_step_completeness": series,
        "api_calls": _api_report(recorder, _business_days(policy, None, period.first, last)),
        "daily": _daily(recorder, period.first, last),
    }


def _won_after(line: DealTimeline, book: StageBook, moment: datetime, history_end: datetime) -> bool:
    return any(
        moment < at <= history_end and _stage_at(line, book, at).is_won
        for at, _ in line.value_changes(HistoryField.STAGE)
    )


def _completeness(
    policy: Policy,
    lines: Sequence[DealTimeline],
    owners: Mapping[str, Owner],
    period: Period,
    history_end: datetime,
    cache: dict[str, tuple[list[dict[str, Any]], dict[str, list[bool]]]],
) -> tuple[list[dict[str, Any]], dict[str, list[bool]]]:
    """Weekly samples of next-step completeness; variants with the same next-step rules share them."""
    signature = repr(
        (
            policy.calendar.model_dump(mode="json"),
            policy.defaults.next_step.model_dump(mode="json"),
            [
                (
                    o.when.model_dump(mode="json"),
                    o.rules.model_dump(mode="json", exclude_unset=True).get("next_step"),
                )
                for o in policy.overrides
            ],
        )
    )
    if signature in cache:
        return cache[signature]
    calendar = policy.calendar_for(None)
    series: list[dict[str, Any]] = []
    samples: dict[str, list[bool]] = defaultdict(list)
    day = period.first
    while day <= period.last:
        moment = calendar.working_moment(calendar.opening(day))
        if moment > history_end:
            break
        counted = complete = 0
        for owner_id, ok in next_step_complete(policy, lines, owners, moment):
            counted += 1
            complete += ok
            samples[_key(owner_id)].append(ok)
        series.append(
            {
                "date": calendar.local_day_name(moment),
                "open_deals": counted,
                "complete": complete,
                "share": round(complete / counted, 4) if counted else None,
            }
        )
        day += timedelta(days=7)
    cache[signature] = (series, samples)
    return series, samples


def _api_report(recorder: _Recorder, working_days: Sequence[date]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for crm in CRMS:
        by_endpoint: Counter[str] = Counter()
        for spent in recorder.calls.values():
            by_endpoint.update(spent[crm])
        per_day = [
            float(sum(recorder.calls[d][crm].values())) if d in recorder.calls else 0.0 for d in working_days
        ]
        out[crm] = {
            "total": sum(by_endpoint.values()),
            "per_working_day": _spread(per_day),
            "by_endpoint": dict(sorted(by_endpoint.items())),
        }
    return out


def _daily(recorder: _Recorder, first: date, last: date) -> list[dict[str, Any]]:
    out = []
    day = first
    while day <= last:
        counts = recorder.daily.get(day, Counter())
        spent = recorder.calls.get(day)
        out.append(
            {
                "date": day.isoformat(),
                "tasks_created": counts["tasks_created"],
                "stopped": counts["stopped"],
                "nurtured": counts["nurtured"],
                "api_calls": {crm: sum(spent[crm].values()) if spent else 0 for crm in CRMS},
            }
        )
        day += _DAY
    return out
