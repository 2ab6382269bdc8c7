"""One conversation, one task (``tasks.combine``): the rules' requests to reach the customer share a task.

The follow-up (a), the next step (b), the decision maker (f) and the reactivation (d) all ask the rep to
talk to the customer. The rules decide as if each had a task of its own; ``fold`` then turns their actions
into writes on one task per deal with a checklist, one item per request (``ChecklistItem``):

    the rules decide                        the rep gets
    ---------------------------------       ---------------------------------------------------------
    two or more new requests                one task: due at the earliest item, the agreed channel (else
                                            the most direct one), the main purpose in the subject
    a new request, a task already open      the item is added to it; its due date only moves earlier
    an item's request is settled            the task is updated in place: the item is marked done, dated
    every item settled or superseded        the task is closed with the reason
    several open tasks (from before)        the earliest keeps every open item; the others close

Rules see a combined task's items as tasks of their own (``policies.context.expand_tasks``): the item's key
is the key the rule's own task would have, so "already asked" and the follow-up chain work unchanged. A
lone request stays the rule's own task (same key, subject and body); it becomes a checklist when a second
one joins it. The combined task keeps the key of its main item and every item's evidence in its
explanation; the verdict of every rule stays as it was (``followup explain``). Pure, like the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from policies.context import AGREED, COMBINABLE, COMBINED, DECISION_MAKER, NEXT_STEP, NURTURE, day
from policies.model import (
    CLOSED_ITEM_WORDS,
    Action,
    AutoTask,
    Channel,
    ChecklistItem,
    CloseReason,
    CloseTask,
    CreateTask,
    Evidence,
    Explanation,
    Priority,
    TaskItem,
    TaskType,
    UpdateTask,
    make_key,
)
from policies.settings import TaskText

if TYPE_CHECKING:
    from policies.context import Context

# Which request a combined task is mainly about, and how the subject names the others.
_PRECEDENCE = {NURTURE: 0, AGREED: 1, NEXT_STEP: 2, DECISION_MAKER: 3}
LABELS = {
    NURTURE: "reactivation",
    AGREED: "follow-up",
    NEXT_STEP: "next step",
    DECISION_MAKER: "decision maker",
}
_DIRECTNESS = {TaskType.TODO: 0, TaskType.EMAIL: 1, TaskType.CALL: 2, TaskType.MEETING: 3}
_CHANNEL_TYPE = {
    Channel.CALL: TaskType.CALL,
    Channel.EMAIL: TaskType.EMAIL,
    Channel.MEETING: TaskType.MEETING,
}
_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2}
# When a task closes because of several items at once, the reason that says most wins.
_CLOSING = (CloseReason.DEAL_STOPPED, CloseReason.EXPIRED, CloseReason.SUPERSEDED, CloseReason.SETTLED)
STATE_WORDS = CLOSED_ITEM_WORDS


def is_container(task: AutoTask) -> bool:
    """Whether a task of ours stands for a conversation (so requests can be combined in it).

    A combined task whose checklist cannot be read (somebody removed the marker) is not: nothing is known
    about its items, so it is left alone until it expires (``task_expiry``).
    """
    return bool(task.items) or task.rule_id in COMBINABLE


def items_of(task: AutoTask) -> list[TaskItem]:
    """A task's checklist; a task of one rule is one item (the task itself)."""
    if task.items:
        return list(task.items)
    return [TaskItem(task.rule_id, task.key, task.created_at, task.due_at)]


@dataclass(slots=True)
class _Fresh:
    """A request the rules made this evaluation, as an item."""

    action: CreateTask
    item: TaskItem


@dataclass(slots=True)
class _Box:
    """One open task that stands for a conversation, and what this evaluation does to it."""

    task: AutoTask
    items: list[TaskItem]
    explicit: bool  # a combined task in the CRM (with a checklist), not a task of one rule
    index: int | None = None  # where its resulting action goes in the decision
    originals: list[tuple[int, Action]] = field(default_factory=list)  # the rules' actions on it
    why: dict[str, Explanation] = field(default_factory=dict)  # item key -> what happened to it now
    fresh: list[_Fresh] = field(default_factory=list)
    moved_in: bool = False  # took over another task's open items
    due: datetime | None = None
    due_moved: bool = False

    def at(self, index: int) -> None:
        if self.index is None:
            self.index = index

    @property
    def open_items(self) -> list[TaskItem]:
        return [i for i in self.items if i.closed is None]

    def closed_for_good(self) -> bool:
        """Closed now because nobody acted on it, or the deal stopped: it takes no new item."""
        return any(
            item.closed in (CloseReason.EXPIRED, CloseReason.DEAL_STOPPED)
            for item in self.items
            if item.key in self.why
        )


def fold(ctx: Context, actions: list[Action]) -> list[Action]:
    """The rules' actions with the requests to reach the customer combined (see the module docstring)."""
    if not ctx.virtual:
        if not ctx.combine:
            return actions
        tasks = ctx.deal.auto_tasks
        if not tasks and len(actions) < 2:
            return actions
        creates = 0
        for action in actions:
            if action.__class__ is CreateTask and action.rule_id in COMBINABLE:
                creates += 1
        if not tasks:
            return actions if creates < 2 else _fold(ctx, actions)
        containers = [t for t in tasks if t.is_open and is_container(t)]
        if len(containers) + min(creates, 1) < 2 and creates < 2:
            return actions  # at most one task of one rule, or one request: the rules' actions as they are
    return _fold(ctx, actions)


def _fold(ctx: Context, actions: list[Action]) -> list[Action]:
    boxes = {
        t.id: _Box(t, items_of(t), bool(t.items))
        for t in ctx.deal.auto_tasks
        if t.is_open and is_container(t)
    }
    out: list[Action | None] = []
    fresh: list[tuple[int, CreateTask]] = []
    for action in actions:
        index = len(out)
        out.append(action)
        if isinstance(action, CreateTask):
            if ctx.combine and action.rule_id in COMBINABLE:
                fresh.append((index, action))
                out[index] = None
            continue
        if not isinstance(action, UpdateTask | CloseTask):
            continue
        target = ctx.virtual.get(action.task_id)
        box = boxes.get(target[0].id if target is not None else action.task_id)
        if box is None:
            continue  # not a conversation task (the qualify task, a closed one): as the rule decided
        out[index] = None
        box.at(index)
        box.originals.append((index, action))
        keys = [target[1].key] if target is not None else [i.key for i in box.items if i.closed is None]
        for item_key in keys:
            _apply(ctx, box, item_key, action)
    target_box = _choose(ctx, boxes, bool(fresh)) if ctx.combine else None
    if target_box is not None:
        for index, action in fresh:
            target_box.at(index)
            _add(target_box, action, ctx.now)
    elif fresh:
        if len(fresh) == 1:
            index, action = fresh[0]
            out[index] = action  # a lone request: the rule's own task
        else:
            out[fresh[0][0]] = _combined_create(ctx, [f for _, f in fresh])
    tail: list[Action] = []
    for box in boxes.values():
        result = _result(ctx, box)
        if result is None:
            continue
        if box.index is None:
            tail.extend(result)
        else:
            out[box.index] = result[0]
            tail.extend(result[1:])
    return [a for a in out if a is not None] + tail


def _apply(ctx: Context, box: _Box, item_key: str, action: UpdateTask | CloseTask) -> None:
    for n, item in enumerate(box.items):
        if item.key != item_key or item.closed is not None:
            continue
        if isinstance(action, CloseTask):
            box.items[n] = replace(item, closed=action.reason, closed_on=ctx.today)
        elif action.due_at is not None:
            box.items[n] = replace(item, due_at=action.due_at)
            _move_due(box, action.due_at)
        box.why[item_key] = action.explanation


def _move_due(box: _Box, due: datetime) -> None:
    """An item's due date changed: the task's follows when it is earlier, or when it is the only item."""
    current = box.due or box.task.due_at
    if due < current or len(box.open_items) == 1:
        box.due = due
        box.due_moved = box.due != box.task.due_at


def _add(box: _Box, action: CreateTask, now: datetime) -> None:
    item = TaskItem(action.rule_id, action.key, now, action.due_at)
    box.items.append(item)
    box.fresh.append(_Fresh(action, item))
    box.why[item.key] = action.explanation
    current = box.due or box.task.due_at
    if action.due_at < current:  # a new need moves the task earlier, never later
        box.due = action.due_at
        box.due_moved = True


def _choose(ctx: Context, boxes: dict[str, _Box], fresh: bool) -> _Box | None:
    """The one open task that keeps the conversation; other open ones hand over their open items."""
    candidates = [b for b in boxes.values() if not b.closed_for_good() and (b.open_items or fresh)]
    if not candidates:
        return None
    candidates.sort(key=lambda b: (b.task.due_at, b.task.created_at, b.task.id))
    keeper = candidates[0]
    for other in candidates[1:]:
        moving = other.open_items
        if not moving:
            continue
        merged = Explanation(f"combined into task {keeper.task.id}: one conversation, one task")
        for n, item in enumerate(other.items):
            if item.closed is None:
                other.items[n] = replace(item, closed=CloseReason.SUPERSEDED, closed_on=ctx.today)
                other.why[item.key] = merged
        keeper.items.extend(moving)  # the keeper is due first already: its due date stays
        keeper.moved_in = True
        for item in moving:
            keeper.why.setdefault(item.key, other.why.get(item.key) or _verdict_why(ctx, item.rule_id))
    return keeper


def _result(ctx: Context, box: _Box) -> list[Action] | None:
    """What to write to one task: nothing, the rules' own actions, an update of its checklist, or a close."""
    changed = bool(box.originals or box.fresh or box.moved_in)
    still_open = box.open_items
    if not changed and still_open:
        return None
    only_own = not box.explicit and not box.fresh and not box.moved_in
    if only_own and box.originals:
        return [a for _, a in box.originals]  # a task of one rule: the rule's actions, exactly
    checklist = _checklist(ctx, box)
    combined = box.explicit or len(box.items) > 1
    if not still_open:
        reasons = {i.closed for i in box.items if i.key in box.why}
        reason = next((r for r in _CLOSING if r in reasons), CloseReason.SETTLED)
        summary = "nothing left open: " + "; ".join(
            f"{LABELS.get(i.rule_id, i.rule_id)} {STATE_WORDS[i.closed]}" for i in box.items if i.closed
        )
        return [
            CloseTask(
                key=make_key("close", box.task.key),
                deal_id=ctx.deal.id,
                rule_id=_rule_of(box.items),
                explanation=Explanation(summary, _evidence(checklist, changed_only=True)),
                task_id=box.task.id,
                task_key=box.task.key,
                reason=reason,
                items=tuple(checklist) if combined else (),
                body=render_checklist(checklist, ctx.text_values()["contact"]) if combined else None,
            )
        ]
    task_type = _task_type(
        ctx, [box.task.task_type, *(f.action.task_type for f in box.fresh)], len(box.items)
    )
    due = box.due if box.due_moved and box.due is not None else None
    state = [f"{i.key}:{i.closed or 'open'}" for i in box.items]
    return [
        UpdateTask(
            key=make_key("update", box.task.key, *state, (due or box.task.due_at).isoformat(), task_type),
            deal_id=ctx.deal.id,
            rule_id=_rule_of(box.items),
            explanation=Explanation(_update_summary(box), _evidence(checklist, changed_only=False)),
            task_id=box.task.id,
            task_key=box.task.key,
            due_at=due,
            subject=_subject(checklist),
            body=render_checklist(checklist, ctx.text_values()["contact"]),
            priority=_priority(ctx, box),
            task_type=task_type if task_type != box.task.task_type else None,
            items=tuple(checklist),
        )
    ]


def _combined_create(ctx: Context, fresh: list[CreateTask]) -> CreateTask:
    """Two or more new requests and no open task to add them to: one new task with a checklist."""
    fresh = sorted(fresh, key=lambda a: _PRECEDENCE[a.rule_id])
    main = fresh[0]
    checklist = [
        ChecklistItem(
            TaskItem(a.rule_id, a.key, ctx.now, a.due_at),
            a.subject,
            a.body,
            a.explanation.summary,
            a.explanation.evidence,
        )
        for a in fresh
    ]
    missed = [a.fell_due_at for a in fresh if a.fell_due_at is not None]
    return CreateTask(
        key=main.key,  # the main request's intent: the same requests give the same key on every run
        deal_id=ctx.deal.id,
        rule_id=COMBINED,
        explanation=Explanation(
            "one conversation for " + "; ".join(a.explanation.summary for a in fresh),
            _evidence(checklist, changed_only=False),
        ),
        owner_id=main.owner_id,
        subject=_subject(checklist),
        body=render_checklist(checklist, ctx.text_values()["contact"]),
        due_at=min(a.due_at for a in fresh),
        task_type=_task_type(ctx, [a.task_type for a in fresh], len(fresh)),
        priority=max((a.priority for a in fresh), key=_RANK.__getitem__),
        contact_id=next((a.contact_id for a in fresh if a.contact_id is not None), None),
        fell_due_at=min(missed) if missed else None,
        items=tuple(checklist),
    )


def _rule_of(items: Sequence[TaskItem]) -> str:
    return items[0].rule_id if len(items) == 1 else COMBINED


def _task_type(ctx: Context, types: Sequence[TaskType], count: int) -> TaskType:
    """The channel the customer agreed, else the most direct one among the items' (a lone item: its own)."""
    agreed = ctx.deal.agreement.channel
    if agreed is not None and count > 1:
        return _CHANNEL_TYPE[agreed]
    return max(types, key=_DIRECTNESS.__getitem__)


def _priority(ctx: Context, box: _Box) -> Priority | None:
    """The highest priority among the open items, if that is not what the task has already (the CRM's
    task is not read for it: it is the highest among the items open before)."""
    fresh = {f.item.key: f.action.priority for f in box.fresh}
    ranks = [fresh.get(i.key) or _rule_priority(ctx, i.rule_id) for i in box.open_items]
    before = [_rule_priority(ctx, i.rule_id) for i in items_of(box.task) if i.closed is None]
    wanted = max(ranks, key=_RANK.__getitem__)
    return wanted if not before or wanted != max(before, key=_RANK.__getitem__) else None


def _rule_priority(ctx: Context, rule_id: str) -> Priority:
    if rule_id == AGREED:
        return Priority.HIGH if ctx.deal.agreement.interval_days else Priority.MEDIUM
    return Priority.HIGH if rule_id in (DECISION_MAKER, NURTURE) else Priority.MEDIUM


def _checklist(ctx: Context, box: _Box) -> list[ChecklistItem]:
    fresh = {f.item.key: f.action for f in box.fresh}
    out = []
    for item in box.items:
        action = fresh.get(item.key)
        if action is not None:
            out.append(ChecklistItem(item, action.subject, action.body, *_why(action.explanation)))
            continue
        title, detail = _texts(ctx, item)
        why = box.why.get(item.key)
        if why is None and item.closed is None:
            why = _verdict_why(ctx, item.rule_id)
        out.append(ChecklistItem(item, title, detail, *_why(why)))
    return out


def _why(explanation: Explanation | None) -> tuple[str, tuple[Evidence, ...]]:
    return ("", ()) if explanation is None else (explanation.summary, explanation.evidence)


def _verdict_why(ctx: Context, rule_id: str) -> Explanation:
    """Why an item already on the task is still open, in the words its rule uses when it asks (the
    rule's verdict of this evaluation has the facts; its reason is written for ``explain``)."""
    verdict = ctx.verdicts.get(rule_id)
    if verdict is None:
        return Explanation("")
    facts = {e.label: e.value for e in verdict.evidence}
    summary = verdict.reason
    if rule_id == AGREED and "due" in facts and "basis" in facts:
        summary = f"follow-up due {facts['due']} ({facts['basis']})"
    elif rule_id == NEXT_STEP and "missing" in facts:
        summary = f"the next step is incomplete: {facts['missing']}"
    elif rule_id == DECISION_MAKER and "roles wanted" in facts:
        summary = f"no contact in a decision-making role ({facts['roles wanted']})"
    return Explanation(summary, verdict.evidence)


def _texts(ctx: Context, item: TaskItem) -> tuple[str, str]:
    """An item's title and instructions from its rule's task text (the rule made no task this time)."""
    texts = ctx.policy.texts
    text: TaskText | None = {
        AGREED: texts.agreed_followup if ctx.deal.agreement.interval_days else texts.cadence_followup,
        NEXT_STEP: texts.next_step,
        DECISION_MAKER: texts.decision_maker,
        NURTURE: texts.reactivate,
    }.get(item.rule_id)
    if text is None:
        return item.rule_id, ""
    signal = ctx.facts.last_signal
    values = ctx.text_values(
        missing=", ".join(ctx.step_gaps or ()),
        roles=", ".join(ctx.rules.decision_maker.roles),
        signal=f"{signal.kind} on {day(signal.occurred_at, ctx.calendar)}" if signal else "none",
        due=day(item.due_at, ctx.calendar),
    )
    return text.subject.render(values), text.body.render(values)


def _subject(checklist: Sequence[ChecklistItem]) -> str:
    """The main purpose, then the other open items by name."""
    open_items = sorted(
        (c for c in checklist if c.item.closed is None), key=lambda c: _PRECEDENCE.get(c.item.rule_id, 9)
    )
    if not open_items:
        return checklist[0].title
    others = [LABELS.get(c.item.rule_id, c.item.rule_id) for c in open_items[1:]]
    return open_items[0].title + (" + " + ", ".join(others) if others else "")


def _update_summary(box: _Box) -> str:
    parts = []
    for item in box.items:
        why = box.why.get(item.key)
        if why is None:
            continue
        label = LABELS.get(item.rule_id, item.rule_id)
        if item.closed is not None:
            parts.append(f"{label} {STATE_WORDS[item.closed]} ({why.summary})")
        elif any(f.item.key == item.key for f in box.fresh):
            parts.append(f"{label} added ({why.summary})")
        elif why.summary:
            parts.append(f"{label}: {why.summary}")
    left = len(box.open_items)
    return f"checklist updated, {left} of {len(box.items)} open: " + "; ".join(parts)


def _evidence(checklist: Sequence[ChecklistItem], *, changed_only: bool) -> tuple[Evidence, ...]:
    """Every item's evidence, each labelled with its item (the combined task's explanation keeps all)."""
    out = []
    for entry in checklist:
        if changed_only and entry.item.closed is None:
            continue
        label = LABELS.get(entry.item.rule_id, entry.item.rule_id)
        out.append(Evidence(label, _state(entry.item)))
        out.extend(Evidence(f"{label} · {e.label}", e.value) for e in entry.evidence)
    return tuple(out)


def _state(item: TaskItem) -> str:
    if item.closed is None:
        return f"open, due {item.due_at:%Y-%m-%d %H:%M} UTC"
    when = f" {item.closed_on.isoformat()}" if item.closed_on else ""
    return STATE_WORDS[item.closed] + when


def render_checklist(checklist: Sequence[ChecklistItem], contact: str) -> str:
    """The plain-text body of a combined task: a heading paragraph, then one entry per item.

    Salesforce shows it as it is; the HubSpot connector renders the same checklist as HTML under the same
    heading (the body's first paragraph).
    """
    left = sum(1 for c in checklist if c.item.closed is None)
    lines = [f"One conversation with {contact}: {left} of {len(checklist)} open.", ""]
    for entry in checklist:
        item = entry.item
        if item.closed is not None:
            lines.append(f"[x] {entry.title} ({_state(item)})")
            continue
        lines.append(f"[ ] {entry.title}")
        if entry.detail:
            lines.append(f"    {entry.detail}")
        if entry.why:
            lines.append(f"    Why: {entry.why}")
        lines.extend(f"    - {e.label}: {e.value}" for e in entry.evidence)
    return "\n".join(lines)
