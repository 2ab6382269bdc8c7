"""Pipeline hygiene per owner and team, from one pass over the mirror (every deal's JSON read once).

Each open deal in active follow-up is judged by ``policies.hygiene.assess`` (the engine's own definitions:
see that module); the pass keeps per-owner tallies and, for the deal lists, only the top rows of each list
(bounded heaps), so memory does not grow with the mirror. It also notes the state of every crm-followup
task it sees (open or done), which ``report.activity`` needs to tell a task a rep completed from one
still open.
"""

from __future__ import annotations

import dataclasses
import heapq
import multiprocessing
import os
import re
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import altair as alt
import sqlalchemy as sa

from policies.codec import deal_from_json
from policies.hygiene import DealHygiene, assess
from policies.model import Deal, FollowupState, Owner
from report import charts
from report.cohorts import Observed, Wanted, observe
from report.model import Cell, Chart, Column, Figure, Section, Table, Tile, num
from report.sources import AccountSource, ReportRequest, owner_label, team_label
from store import StateStore
from store.schema import mirror_deals

STEP_ORDER = ("complete", "incomplete", "vague", "missing")
STEP_LABELS = {
    "complete": "complete",
    "incomplete": "why or when missing",
    "vague": "vague what",
    "missing": "no next step",
}
STEP_COLOURS = {
    "complete": charts.BLUE,
    "incomplete": charts.SKY,
    "vague": charts.ORANGE,
    "missing": charts.VERMILION,
}
FOLLOWUP_ORDER = ("early", "on_time", "late", "overdue")
FOLLOWUP_LABELS = {"early": "early", "on_time": "on time", "late": "late", "overdue": "overdue now"}
FOLLOWUP_COLOURS = {
    "early": charts.YELLOW,
    "on_time": charts.GREEN,
    "late": charts.ORANGE,
    "overdue": charts.VERMILION,
}
STAGE_BUCKETS: tuple[tuple[int | None, str], ...] = (
    (7, "0–7 days"),
    (30, "8–30 days"),
    (90, "31–90 days"),
    (180, "91–180 days"),
    (None, "over 180 days"),
)
TOUCH_BUCKETS = 10  # 0..9 and "10+"
CHART_OWNERS = 30  # owners drawn in the per-owner charts (the tables list every owner)


def anchor_for(account: str, deal_id: str) -> str:
    return "deal-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{account}-{deal_id}")


def touch_bucket(unanswered: int) -> str:
    return str(unanswered) if unanswered < TOUCH_BUCKETS else f"{TOUCH_BUCKETS}+"


def stage_bucket(days_in_stage: int) -> str:
    for limit, label in STAGE_BUCKETS:
        if limit is None or days_in_stage <= limit:
            return label
    raise AssertionError("the last bucket has no limit")


@dataclass
class OwnerTally:
    account: str
    owner_id: str
    owner: str
    team: str
    open: int = 0
    step: Counter[str] = field(default_factory=Counter)
    followup: Counter[str] = field(default_factory=Counter)
    stage_days: list[int] = field(default_factory=list)
    unanswered: int = 0
    nurture: int = 0

    @property
    def complete_share(self) -> float | None:
        judged = sum(self.step[s] for s in STEP_ORDER)
        return 100 * self.step["complete"] / judged if judged else None

    @property
    def on_time_share(self) -> float | None:
        made = self.followup["early"] + self.followup["on_time"] + self.followup["late"]
        return 100 * self.followup["on_time"] / made if made else None


@dataclass(frozen=True, slots=True)
class Listed:
    """A deal in one of the lists, with what it needs to be shown and explained."""

    account: str
    deal: Deal
    owner: Owner | None
    owner_name: str
    team: str
    hygiene: DealHygiene
    issue: str


class TopRows:
    """The ``size`` highest-ranked rows seen (a bounded min-heap) and how many were offered."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.offered = 0
        self._heap: list[tuple[tuple[float, ...], int, Listed]] = []
        self._seen = 0  # tie-breaker: equal ranks keep the order they came in

    def offer(self, rank: tuple[float, ...], make: Callable[[], Listed]) -> None:
        """Count a row; build and keep it only if it ranks among the top ``size`` so far."""
        self.offered += 1
        if len(self._heap) < self.size or rank > self._heap[0][0]:
            self._keep(rank, make())

    def _keep(self, rank: tuple[float, ...], item: Listed) -> None:
        self._seen += 1
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, (rank, self._seen, item))
        elif rank > self._heap[0][0]:
            heapq.heapreplace(self._heap, (rank, self._seen, item))

    def merge(self, other: TopRows) -> None:
        """Add another part's rows (a parallel scan): the top ``size`` of both, the offers of both."""
        self.offered += other.offered
        for rank, _, item in sorted(other._heap, key=lambda e: e[1]):
            self._keep(rank, item)

    def rows(self) -> list[Listed]:
        return [item for _, _, item in sorted(self._heap, key=lambda e: (e[0], -e[1]), reverse=True)]


@dataclass
class MirrorScan:
    tallies: dict[tuple[str, str], OwnerTally] = field(default_factory=dict)
    touches: Counter[str] = field(default_factory=Counter)
    stages: Counter[str] = field(default_factory=Counter)
    task_open: dict[tuple[str, str], bool] = field(default_factory=dict)  # (account, task key) -> open
    mirrored: Counter[str] = field(default_factory=Counter)
    lists: dict[str, TopRows] = field(default_factory=dict)
    rollout: Observed = field(default_factory=Observed)  # for the rollout's cohorts (report.cohorts)


LISTS = ("next_step", "overdue", "touches", "stage")


def scan(
    request: ReportRequest, owners: dict[str, dict[str, Owner]], wanted: Wanted | None = None
) -> MirrorScan:
    """One pass over every account's mirror; a large mirror in a file or server database is read by two
    processes, each decoding and judging half of the deals (by deal id range), and their results merged.
    ``wanted``: the deals the rollout section asks about (``report.cohorts.observe``)."""
    result = _empty(request)
    wanted = wanted or Wanted()
    for source in request.accounts:
        parts = _ranges(request, source.name)
        if len(parts) == 1:
            _scan_range(result, request, source, owners[source.name], wanted, *parts[0])
            continue
        # The policy travels without its caches (compiled calendars hold functions that do not pickle).
        portable = dataclasses.replace(source, policy=source.policy.without_caches())
        jobs = [
            (
                request.store.url,
                request.since,
                request.now,
                request.deal_rows,
                portable,
                owners[source.name],
                wanted,
                r,
            )
            for r in parts
        ]
        with _pool(request, len(parts)) as pool:
            for part in pool.map(_scan_part, jobs):
                _merge(result, part)
    return result


def _pool(request: ReportRequest, workers: int) -> ProcessPoolExecutor:
    """Processes for a parallel scan. On Linux they are forked: a child starts with the parent's modules
    already imported (spawning re-imports the report's charting stack in each, seconds of CPU that a busy
    machine does not have: 37 s against 19 s for 100,000 deals at a load of 3.6). A forked child opens
    its own store and never touches the parent's connections (SQLAlchemy's ``dispose(close=False)``)."""
    if sys.platform != "linux":
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    engine = request.store.engine
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=partial(engine.dispose, close=False),
    )


def _empty(request: ReportRequest) -> MirrorScan:
    return MirrorScan(lists={name: TopRows(request.deal_rows) for name in LISTS})


def _ranges(request: ReportRequest, account: str) -> list[tuple[str | None, str | None]]:
    """Deal id ranges [low, high) to scan: one, or two halves for a large mirror outside memory."""
    url = request.store.url
    if request.parallel_from is None or ":memory:" in url or (os.cpu_count() or 1) < 2:
        return [(None, None)]
    with request.store.engine.connect() as c:
        count = c.execute(
            sa.select(sa.func.count()).select_from(mirror_deals).where(mirror_deals.c.account == account)
        ).scalar_one()
        if count < request.parallel_from or count < 2:
            return [(None, None)]
        middle = c.execute(
            sa.select(mirror_deals.c.deal_id)
            .where(mirror_deals.c.account == account)
            .order_by(mirror_deals.c.deal_id)
            .offset(count // 2)
            .limit(1)
        ).scalar_one()
    return [(None, middle), (middle, None)]


def _scan_part(job: tuple[Any, ...]) -> MirrorScan:
    """One process's share of a parallel scan, on its own connection to the store."""
    url, since, now, deal_rows, source, owners, wanted, (low, high) = job
    store = StateStore(url)
    try:
        request = ReportRequest(store, (source,), since, now, deal_rows)
        result = _empty(request)
        _scan_range(result, request, source, owners, wanted, low, high)
        return result
    finally:
        store.close()


def _merge(into: MirrorScan, part: MirrorScan) -> None:
    for key, tally in part.tallies.items():
        mine = into.tallies.setdefault(
            key, OwnerTally(tally.account, tally.owner_id, tally.owner, tally.team)
        )
        mine.open += tally.open
        mine.step.update(tally.step)
        mine.followup.update(tally.followup)
        mine.stage_days.extend(tally.stage_days)
        mine.unanswered += tally.unanswered
        mine.nurture += tally.nurture
    into.touches.update(part.touches)
    into.stages.update(part.stages)
    into.task_open.update(part.task_open)
    into.mirrored.update(part.mirrored)
    into.rollout.merge(part.rollout)
    for name in LISTS:
        into.lists[name].merge(part.lists[name])


def _scan_range(
    result: MirrorScan,
    request: ReportRequest,
    source: AccountSource,
    owners: dict[str, Owner],
    wanted: Wanted,
    low: str | None,
    high: str | None,
) -> None:
    since_day = request.since.date()
    query = sa.select(mirror_deals.c.data).where(mirror_deals.c.account == source.name)
    if low is not None:
        query = query.where(mirror_deals.c.deal_id >= low)
    if high is not None:
        query = query.where(mirror_deals.c.deal_id < high)
    with request.store.engine.connect() as connection:
        for (data,) in connection.execution_options(yield_per=1000).execute(query):
            deal = deal_from_json(data)
            if wanted:
                observe(
                    result.rollout,
                    wanted,
                    source.name,
                    source.policy,
                    deal,
                    owners.get(deal.owner_id or ""),
                    request.now,
                )
            _scan_deal(result, request, source, owners, deal, since_day)


def _scan_deal(
    result: MirrorScan,
    request: ReportRequest,
    source: AccountSource,
    owners: dict[str, Owner],
    deal: Deal,
    since_day: date,
) -> None:
    account = source.name
    result.mirrored[account] += 1
    for task in deal.auto_tasks:
        result.task_open[(account, task.key)] = task.is_open
    if deal.is_closed or deal.followup_state is FollowupState.STOPPED:
        return
    owner_id = deal.owner_id or ""
    tally = result.tallies.get((account, owner_id))
    if tally is None:
        name = owner_label(owners, owner_id)
        tally = OwnerTally(account, owner_id, name, team_label(owners, owner_id))
        result.tallies[(account, owner_id)] = tally
    if deal.followup_state is FollowupState.NURTURE:
        tally.nurture += 1
        return
    owner = owners.get(owner_id)
    hygiene = assess(source.policy, deal, request.now, owner, since=request.since)
    tally.open += 1
    tally.step[hygiene.step] += 1
    tally.stage_days.append(hygiene.days_in_stage)
    tally.unanswered += hygiene.unanswered
    result.touches[touch_bucket(hygiene.unanswered)] += 1
    result.stages[stage_bucket(hygiene.days_in_stage)] += 1
    overdue = None
    for followup in hygiene.followups:
        if followup.status in ("overdue", "not_due") or followup.due >= since_day:
            tally.followup[followup.status] += 1
        if followup.status == "overdue":
            overdue = followup

    def listed(issue: str) -> Callable[[], Listed]:
        return lambda: Listed(account, deal, owner, tally.owner, tally.team, hygiene, issue)

    amount = deal.amount or 0.0
    if hygiene.step in ("incomplete", "vague", "missing"):
        result.lists["next_step"].offer((amount, hygiene.days_in_stage), listed(", ".join(hygiene.gaps)))
    if overdue is not None:
        late = (request.now.date() - overdue.due).days
        result.lists["overdue"].offer((late, amount), listed(f"due {overdue.due.isoformat()}"))
    if hygiene.unanswered:
        result.lists["touches"].offer(
            (hygiene.unanswered, amount), listed(f"{hygiene.unanswered} unanswered")
        )
    result.lists["stage"].offer(
        (hygiene.days_in_stage, amount),
        listed(f"{hygiene.days_in_stage} days in {deal.stage.label or deal.stage.id}"),
    )


# ---------------------------------------------------------------------------------------------- section


def section(request: ReportRequest, found: MirrorScan) -> Section:
    tallies = sorted(found.tallies.values(), key=lambda t: (-t.open, t.owner, t.account))
    total = OwnerTally("", "", "all", "")
    for t in tallies:
        total.open += t.open
        total.step.update(t.step)
        total.followup.update(t.followup)
        total.stage_days.extend(t.stage_days)
        total.nurture += t.nurture
    median = statistics.median(total.stage_days) if total.stage_days else None
    tiles = (
        Tile("open_deals", "open deals in follow-up", f"{total.open:,}"),
        Tile(
            "next_step_complete",
            "with a complete next step",
            f"{total.step['complete']:,}",
            _share(total.complete_share),
        ),
        Tile("followups_overdue", "agreed follow-ups overdue now", f"{total.followup['overdue']:,}"),
        Tile("median_days_in_stage", "median days in stage", "–" if median is None else f"{median:g}"),
        Tile("in_nurture", "in nurture", f"{total.nurture:,}"),
    )
    label = _owner_axis(request, tallies)
    blocks: tuple[Figure | Table, ...] = (
        Figure(_step_chart(tallies, label), _owner_table(request, tallies)),
        _team_table(tallies),
        Figure(_followup_chart(tallies, label), _followup_table(request, tallies)),
        Figure(*_touches(found)),
        Figure(*_stages(found)),
        *(_deal_table(request, name, found.lists[name]) for name in LISTS),
    )
    return Section(
        id="hygiene",
        title="Pipeline hygiene",
        intro=(
            "Open deals in active follow-up, as the mirror holds them now, judged by the policy's own rules: "
            "a next step needs a concrete what, a why and a future when (the next_step rule, with its "
            "languages and filler phrases); agreed follow-ups fall due at the conversation plus the agreed "
            "interval, in the owner's business calendar."
        ),
        tiles=tiles,
        blocks=blocks,
    )


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}%"


def _owner_axis(request: ReportRequest, tallies: list[OwnerTally]) -> Callable[[OwnerTally], str]:
    names = Counter(t.owner for t in tallies)

    def label(t: OwnerTally) -> str:
        if request.multi or names[t.owner] > 1:
            return f"{t.owner} ({t.account})" if request.multi else f"{t.owner} [{t.owner_id}]"
        return t.owner

    return label


def _owner_columns(request: ReportRequest) -> tuple[Column, ...]:
    return (*request.account_column, Column("owner"), Column("team"))


def _owner_cells(request: ReportRequest, t: OwnerTally) -> tuple[Cell, ...]:
    return (*request.account_cell(t.account), Cell(t.owner), Cell(t.team))


def _step_chart(tallies: list[OwnerTally], label: Callable[[OwnerTally], str]) -> Chart | None:
    shown = [t for t in tallies if t.open][:CHART_OWNERS]
    more = f" (the {CHART_OWNERS} owners with most open deals)" if len(tallies) > CHART_OWNERS else ""
    return charts.drawn(
        *_owners_by_status(shown, label, _STEP_STATUSES, ("deals", "open deals")),
        id="chart-next-step",
        title="Next step by owner",
        description=f"Open deals per owner by the state of their next step{more}.",
    )


@dataclass(frozen=True, slots=True)
class _Statuses:
    """A tally of owners' deals by status: which counter, the statuses in order, their labels and colours."""

    of: Callable[[OwnerTally], Counter[str]]
    order: tuple[str, ...]
    labels: dict[str, str]
    colours: dict[str, str]


_STEP_STATUSES = _Statuses(lambda t: t.step, STEP_ORDER, STEP_LABELS, STEP_COLOURS)
_FOLLOWUP_STATUSES = _Statuses(lambda t: t.followup, FOLLOWUP_ORDER, FOLLOWUP_LABELS, FOLLOWUP_COLOURS)


def _owners_by_status(
    shown: list[OwnerTally], label: Callable[[OwnerTally], str], statuses: _Statuses, value: charts.Field
) -> tuple[list[dict[str, Any]], alt.Chart]:
    """The rows and bars of a chart of owners (``label``) by status, stacked in the statuses' order."""
    rows = [
        {"owner": label(t), "status": statuses.labels[s], value[0]: statuses.of(t)[s]}
        for t in shown
        for s in statuses.order
        if statuses.of(t)[s]
    ]
    order = [statuses.labels[s] for s in statuses.order]
    by_status = charts.Stack("status", order, {statuses.labels[k]: v for k, v in statuses.colours.items()})
    return rows, charts.stacked_bars(rows, ("owner", "owner"), by_status, value)


def _owner_table(request: ReportRequest, tallies: list[OwnerTally]) -> Table:
    columns = (
        *_owner_columns(request),
        Column("open deals", True, "open"),
        *(Column(STEP_LABELS[s], True, s) for s in STEP_ORDER),
        Column("next step not required", True, "not_required"),
        Column("% complete", True, "complete_share"),
        Column("in nurture", True, "nurture"),
    )
    rows = [
        (
            *_owner_cells(request, t),
            num(t.open),
            *(num(t.step[s]) for s in STEP_ORDER),
            num(t.step["not_required"]),
            num(t.complete_share, suffix="%"),
            num(t.nurture),
        )
        for t in tallies
    ]
    return Table("table-next-step", "Next step by owner", columns, rows)


def _team_table(tallies: list[OwnerTally]) -> Table:
    teams: dict[str, OwnerTally] = {}
    members: Counter[str] = Counter()
    for t in tallies:
        team = teams.setdefault(t.team, OwnerTally("", "", t.team, t.team))
        team.open += t.open
        team.step.update(t.step)
        team.followup.update(t.followup)
        team.nurture += t.nurture
        members[t.team] += 1
    columns = (
        Column("team"),
        Column("owners", True),
        Column("open deals", True, "open"),
        *(Column(STEP_LABELS[s], True, s) for s in STEP_ORDER),
        Column("% complete", True, "complete_share"),
        Column("agreed follow-ups on time", True, "on_time"),
        Column("late", True),
        Column("overdue now", True, "overdue"),
        Column("in nurture", True, "nurture"),
    )
    rows = [
        (
            Cell(name),
            num(members[name]),
            num(t.open),
            *(num(t.step[s]) for s in STEP_ORDER),
            num(t.complete_share, suffix="%"),
            num(t.followup["on_time"]),
            num(t.followup["late"]),
            num(t.followup["overdue"]),
            num(t.nurture),
        )
        for name, t in sorted(teams.items(), key=lambda kv: -kv[1].open)
    ]
    return Table("table-teams", "Hygiene by team", columns, rows)


def _followup_chart(tallies: list[OwnerTally], label: Callable[[OwnerTally], str]) -> Chart | None:
    shown = sorted(tallies, key=lambda t: -sum(t.followup[s] for s in FOLLOWUP_ORDER))[:CHART_OWNERS]
    return charts.drawn(
        *_owners_by_status(shown, label, _FOLLOWUP_STATUSES, ("follow-ups", "agreed follow-ups")),
        id="chart-followups",
        title="Agreed follow-ups by owner",
        description="Follow-ups the customer agreed (an agreed interval), made early, on the due day, late, "
        "or overdue now, per owner.",
    )


def _followup_table(request: ReportRequest, tallies: list[OwnerTally]) -> Table:
    columns = (
        *_owner_columns(request),
        *(Column(FOLLOWUP_LABELS[s], True, s) for s in FOLLOWUP_ORDER),
        Column("not due yet", True, "not_due"),
        Column("% on time", True, "on_time_share"),
    )
    rows = [
        (
            *_owner_cells(request, t),
            *(num(t.followup[s]) for s in FOLLOWUP_ORDER),
            num(t.followup["not_due"]),
            num(t.on_time_share, suffix="%"),
        )
        for t in tallies
        if sum(t.followup.values())
    ]
    return Table("table-followups", "Agreed follow-ups by owner", columns, rows)


def _touches(found: MirrorScan) -> tuple[Chart | None, Table]:
    return _open_deals_by_bucket(
        found.touches,
        [touch_bucket(i) for i in range(TOUCH_BUCKETS + 1)],
        ("touches", "unanswered touches since the last conversation"),
        Column("unanswered touches", True, "touches"),
        id="touches",
        title="Unanswered touches",
        description="Open deals by the number of outbound touches without an answer since the last "
        "conversation.",
    )


def _stages(found: MirrorScan) -> tuple[Chart | None, Table]:
    return _open_deals_by_bucket(
        found.stages,
        [label for _, label in STAGE_BUCKETS],
        ("time in stage", "time in the current stage"),
        Column("time in stage", False, "bucket"),
        id="stage-age",
        title="Time in stage",
        description="Open deals by how long they have been in their current stage.",
        colour=charts.PURPLE,
    )


def _open_deals_by_bucket(
    counts: Counter[str],
    order: list[str],
    category: charts.Field,
    column: Column,
    *,
    id: str,
    title: str,
    description: str,
    colour: str = charts.BLUE,
) -> tuple[Chart | None, Table]:
    """A distribution of open deals over ordered buckets: a bar chart (none when empty) and its table.

    ``id`` names both (``chart-<id>``, ``table-<id>``); the table adds each bucket's share of the deals.
    """
    total = sum(counts.values())
    rows = [{category[0]: b, "deals": counts[b]} for b in order]
    chart = None
    if total:
        chart = charts.render(
            charts.bars(rows, category, ("deals", "open deals"), colour, category_order=order),
            id=f"chart-{id}",
            title=title,
            description=description,
            marks=len(rows),
        )
    cells = [
        (Cell(b, i), num(counts[b]), num(100 * counts[b] / total if total else None, digits=1, suffix="%"))
        for i, b in enumerate(order)
    ]
    columns = (column, Column("open deals", True, "deals"), Column("share", True))
    return chart, Table(f"table-{id}", title, columns, cells)


_LIST_TITLES = {
    "next_step": ("Next steps to fix", "largest amount first"),
    "overdue": ("Agreed follow-ups overdue now", "longest overdue first"),
    "touches": ("Most unanswered touches", "most touches first"),
    "stage": ("Longest in their stage", "longest first"),
}


def _deal_table(request: ReportRequest, name: str, top: TopRows) -> Table:
    title, order = _LIST_TITLES[name]
    rows = top.rows()
    columns = (
        *request.account_column,
        Column("deal id", False, "deal_id"),
        Column("deal"),
        Column("owner"),
        Column("team"),
        Column("stage"),
        Column("amount", True),
        Column("issue"),
        Column("unanswered", True),
        Column("days in stage", True, "days_in_stage"),
        Column("evidence", False, "evidence"),
    )
    cells = [
        (
            *request.account_cell(item.account),
            request.deal_cell(item.account, item.deal.id),
            Cell(item.deal.name),
            Cell(item.owner_name),
            Cell(item.team),
            Cell(item.deal.stage.label or item.deal.stage.id),
            num(item.deal.amount),
            Cell(item.issue),
            num(item.hygiene.unanswered),
            num(item.hygiene.days_in_stage),
            Cell("verdicts", href="#" + anchor_for(item.account, item.deal.id)),
        )
        for item in rows
    ]
    note = f"{top.offered:,} deals; showing {len(rows):,}, {order}." if top.offered else "No deals."
    return Table(f"table-list-{name.replace('_', '-')}", title, columns, cells, note=note)


def listed_deals(found: MirrorScan) -> list[Listed]:
    """Every deal shown in a list, once (for the evidence at the end of the page)."""
    seen: dict[tuple[str, str], Listed] = {}
    for name in LISTS:
        for item in found.lists[name].rows():
            seen.setdefault((item.account, item.deal.id), item)
    return list(seen.values())
