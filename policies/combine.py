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
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from policies.context import (
    AGREED,
    COMBINABLE,
    COMBINED,
    DECISION_MAKER,
    NEXT_STEP,
    NURTURE,
    Request,
    day,
    fact,
    task_of,
)
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
from policies.policy_file import TaskText

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
# Most direct first. Enum members are compared by identity here, never hashed: an enum's hash is a Python
# function, and dictionaries keyed by members cost more than the rest of the combining.
_MOST_DIRECT = (TaskType.MEETING, TaskType.CALL, TaskType.EMAIL)
_HIGHEST = (Priority.HIGH, Priority.MEDIUM)
# When a task closes because of several items at once, the reason that says most wins.
_CLOSING = (CloseReason.DEAL_STOPPED, CloseReason.EXPIRED, CloseReason.SUPERSEDED, CloseReason.SETTLED)
STATE_WORDS = CLOSED_ITEM_WORDS
_ON_TASKS = (UpdateTask, CloseTask)
_OPEN = {rule_id: Evidence(label, "open") for rule_id, label in LABELS.items()}  # shared, immutable


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


class _Box:
    """One open task that stands for a conversation, and what this evaluation does to it."""

    __slots__ = (
        "due",
        "due_moved",
        "explicit",
        "fresh",
        "index",
        "items",
        "moved_in",
        "moved_out",
        "originals",
        "task",
        "why",
    )

    def __init__(self, task: AutoTask) -> None:
        self.task = task
        self.items = items_of(task)
        self.explicit = bool(task.items)  # a combined task in the CRM (with a checklist), not one rule's
        self.index: int | None = None  # where its resulting action goes in the decision
        self.originals: list[tuple[int, Action]] = []  # the rules' actions on it
        self.why: dict[str, Explanation] = {}  # item key -> what happened to it now
        self.fresh: list[tuple[Request, TaskItem]] = []  # requests added now, as items
        self.moved_in = False  # took over another task's open items
        self.moved_out = False  # handed its open items over to the task that keeps the conversation
        self.due: datetime | None = None
        self.due_moved = False

    def at(self, index: int) -> None:
        if self.index is None:
            self.index = index

    @property
    def open_items(self) -> list[TaskItem]:
        return [i for i in self.items if i.closed is None]

    def closed_for_good(self) -> bool:
        """Closing now because nobody acted on it, or the deal stopped: it takes no new item. A task with
        an item still open stays open, and a new request joins it (one conversation, one task)."""
        return not self.open_items and any(
            item.closed in (CloseReason.EXPIRED, CloseReason.DEAL_STOPPED)
            for item in self.items
            if item.key in self.why
        )


def fold(ctx: Context) -> list[Action]:
    """The decision's actions: the rules' own, with their requests to reach the customer made into tasks
    (see the module docstring). Most evaluations have nothing to combine (no request, or one, and no
    task to add it to): they get the rules' actions after a look at the deal's open tasks."""
    actions, requests = ctx.actions, ctx.requests
    if not ctx.virtual:
        tasks = ctx.deal.auto_tasks
        if not requests:
            if not (ctx.combine and tasks):
                return actions
            containers = [t for t in tasks if t.is_open and is_container(t)]
            if len(containers) < 2:
                return actions  # nothing to merge, nothing to add
        elif not tasks or not any(t.is_open and is_container(t) for t in tasks):
            task = task_of(ctx.deal, requests[0]) if len(requests) == 1 else _combined_create(ctx, requests)
            return [*actions[: ctx.request_at], task, *actions[ctx.request_at :]]
    return _fold(ctx, actions, requests)


def _fold(ctx: Context, actions: list[Action], requests: list[Request]) -> list[Action]:
    """The general case: open tasks that stand for a conversation, and what the rules did to them."""
    boxes = {t.id: _Box(t) for t in ctx.deal.auto_tasks if t.is_open and is_container(t)}
    slot = ctx.request_at if requests else len(actions)  # where the requests' task goes
    out: list[Action | None] = [*actions[:slot], None, *actions[slot:]]
    for index, action in enumerate(out):
        if not isinstance(action, _ON_TASKS):
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
    keeper = _choose(ctx, boxes, bool(requests)) if ctx.combine else None
    if keeper is not None:
        for request in requests:
            keeper.at(slot)
            _add(keeper, request, ctx.now)
    elif requests:
        out[slot] = task_of(ctx.deal, requests[0]) if len(requests) == 1 else _combined_create(ctx, requests)
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


def _add(box: _Box, request: Request, now: datetime) -> None:
    item = TaskItem(request.rule_id, request.key, now, request.due_at)
    box.items.append(item)
    box.fresh.append((request, item))
    box.why[item.key] = request.explanation
    current = box.due or box.task.due_at
    if request.due_at < current:  # a new need moves the task earlier, never later
        box.due = request.due_at
        box.due_moved = True


def _choose(ctx: Context, boxes: dict[str, _Box], fresh: bool) -> _Box | None:
    """The one open task that keeps the conversation; other open ones hand over their open items."""
    if len(boxes) == 1:
        (box,) = boxes.values()
        return box if (fresh or box.open_items) and not box.closed_for_good() else None
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
        keeper.moved_in = other.moved_out = True
        for item in moving:
            keeper.why.setdefault(item.key, other.why.get(item.key) or _verdict_why(ctx, item.rule_id))
    return keeper


def _result(ctx: Context, box: _Box) -> list[Action] | None:
    """What to write to one task: nothing, the rules' own actions, an update of its checklist, or a close."""
    changed = bool(box.originals or box.fresh or box.moved_in)
    still_open = box.open_items
    if not changed and still_open:
        return None
    # a task of one rule that kept its item: the rule's actions stand (moved out, the task closes instead)
    only_own = not box.explicit and not box.fresh and not box.moved_in and not box.moved_out
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
                body=heading(checklist, ctx.value("contact")) if combined else None,
            )
        ]
    task_type = _task_type(ctx, [box.task.task_type, *(r.task_type for r, _ in box.fresh)], len(box.items))
    due = box.due if box.due_moved and box.due is not None else None
    state = [i.key if i.closed is None else f"{i.key}:{i.closed!s}" for i in box.items]
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
            body=heading(checklist, ctx.value("contact")),
            priority=_priority(ctx, box),
            task_type=task_type if task_type != box.task.task_type else None,
            items=tuple(checklist),
        )
    ]


def _combined_create(ctx: Context, requests: list[Request]) -> CreateTask:
    """Two or more new requests and no open task to add them to: one new task with a checklist."""
    fresh = sorted(requests, key=_precedence)
    main = fresh[0]
    now = ctx.now
    checklist = tuple(
        [
            ChecklistItem(
                TaskItem(r.rule_id, r.key, now, r.due_at),
                r.subject,
                r.body,
                r.explanation.summary,
                r.explanation.evidence,
            )
            for r in fresh
        ]
    )
    missed = [r.fell_due_at for r in fresh if r.fell_due_at is not None]
    return CreateTask(
        key=main.key,  # the main request's intent: the same requests give the same key on every run
        deal_id=ctx.deal.id,
        rule_id=COMBINED,
        explanation=Explanation(
            "one conversation for " + "; ".join([r.explanation.summary for r in fresh]),
            _evidence(checklist, changed_only=False),
        ),
        owner_id=ctx.deal.owner_id,
        subject=main.subject + " + " + ", ".join([LABELS[r.rule_id] for r in fresh[1:]]),
        body=heading(checklist, ctx.value("contact")),
        due_at=min([r.due_at for r in fresh]),
        task_type=_task_type(ctx, [r.task_type for r in fresh], len(fresh)),
        priority=_highest([r.priority for r in fresh]),
        contact_id=next((r.contact_id for r in fresh if r.contact_id is not None), None),
        fell_due_at=min(missed) if missed else None,
        items=checklist,
    )


def _precedence(request: Request) -> int:
    return _PRECEDENCE[request.rule_id]


def _rule_of(items: Sequence[TaskItem]) -> str:
    return items[0].rule_id if len(items) == 1 else COMBINED


def _task_type(ctx: Context, types: Sequence[TaskType], count: int) -> TaskType:
    """The channel the customer agreed, else the most direct one among the items' (a lone item: its own)."""
    agreed = ctx.deal.agreement.channel
    if agreed is not None and count > 1:
        if agreed is Channel.CALL:
            return TaskType.CALL
        return TaskType.EMAIL if agreed is Channel.EMAIL else TaskType.MEETING
    for direct in _MOST_DIRECT:
        for task_type in types:
            if task_type is direct:
                return direct
    return TaskType.TODO


def _highest(priorities: Sequence[Priority]) -> Priority:
    for priority in _HIGHEST:
        for given in priorities:
            if given is priority:
                return priority
    return Priority.LOW


def _priority(ctx: Context, box: _Box) -> Priority | None:
    """The highest priority among the open items, if that is not what the task has already (the CRM's
    task is not read for it: it is the highest among the items open before)."""
    fresh = {i.key: r.priority for r, i in box.fresh}
    wanted = _highest([fresh.get(i.key) or _rule_priority(ctx, i.rule_id) for i in box.open_items])
    task = box.task
    if task.items:
        before = [_rule_priority(ctx, i.rule_id) for i in task.items if i.closed is None]
    else:
        before = [_rule_priority(ctx, task.rule_id)]
    return wanted if not before or wanted is not _highest(before) else None


def _rule_priority(ctx: Context, rule_id: str) -> Priority:
    if rule_id == AGREED:
        return Priority.HIGH if ctx.deal.agreement.interval_days else Priority.MEDIUM
    return Priority.HIGH if rule_id in (DECISION_MAKER, NURTURE) else Priority.MEDIUM


def _checklist(ctx: Context, box: _Box) -> list[ChecklistItem]:
    fresh = {i.key: r for r, i in box.fresh}
    out = []
    for item in box.items:
        request = fresh.get(item.key)
        if request is not None:
            out.append(ChecklistItem(item, request.subject, request.body, *_why(request.explanation)))
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
    evidence = verdict.evidence
    summary = verdict.reason
    if rule_id == AGREED:
        due = _fact(evidence, "due")
        basis = _fact(evidence, "basis")
        if due is not None and basis is not None:
            summary = f"follow-up due {due} ({basis})"
    elif rule_id == NEXT_STEP:
        missing = _fact(evidence, "missing")
        if missing is not None:
            summary = "the next step is incomplete: " + missing
    elif rule_id == DECISION_MAKER:
        roles = _fact(evidence, "roles wanted")
        if roles is not None:
            summary = f"no contact in a decision-making role ({roles})"
    return Explanation(summary, evidence)


def _fact(evidence: tuple[Evidence, ...], label: str) -> str | None:
    for entry in evidence:
        if entry.label == label:
            return entry.value
    return None


def _text_of(ctx: Context, rule_id: str) -> TaskText | None:
    texts = ctx.policy.texts
    if rule_id == AGREED:
        return texts.agreed_followup if ctx.deal.agreement.interval_days else texts.cadence_followup
    if rule_id == NEXT_STEP:
        return texts.next_step
    if rule_id == DECISION_MAKER:
        return texts.decision_maker
    return texts.reactivate if rule_id == NURTURE else None


def _texts(ctx: Context, item: TaskItem) -> tuple[str, str]:
    """An item's title and instructions from its rule's task text (the rule made no task this time)."""
    text = _text_of(ctx, item.rule_id)
    if text is None:
        return item.rule_id, ""
    used = text.fields  # only what the texts use is worked out
    extra: dict[str, str] = {}
    if "missing" in used:
        extra["missing"] = ", ".join(ctx.step_gaps or ())
    if "roles" in used:
        extra["roles"] = ", ".join(ctx.rules.decision_maker.roles)
    if "signal" in used:
        signal = ctx.facts.last_signal
        extra["signal"] = f"{signal.kind} on {day(signal.occurred_at, ctx.calendar)}" if signal else "none"
    if "due" in used:
        extra["due"] = day(item.due_at, ctx.calendar)
    values = ctx.text_values(**extra) if extra else ctx.base_values()
    return text.subject.render(values), text.body.render(values)


def _subject(checklist: Sequence[ChecklistItem]) -> str:
    """The main purpose, then the other open items by name."""
    main: ChecklistItem | None = None
    rank = 9
    for entry in checklist:
        if entry.item.closed is None:
            mine = _PRECEDENCE.get(entry.item.rule_id, 9)
            if main is None or mine < rank:
                main, rank = entry, mine
    if main is None:
        return checklist[0].title
    others = [
        LABELS.get(c.item.rule_id, c.item.rule_id)
        for c in checklist
        if c.item.closed is None and c is not main
    ]
    return main.title + " + " + ", ".join(others) if others else main.title


def _update_summary(box: _Box) -> str:
    parts = []
    added = {i.key for _, i in box.fresh}
    for item in box.items:
        why = box.why.get(item.key)
        if why is None:
            continue
        label = LABELS.get(item.rule_id, item.rule_id)
        if item.closed is not None:
            parts.append(label + " " + _state(item) + " (" + why.summary + ")")
        elif item.key in added:
            parts.append(label + " added (" + why.summary + ")")
        elif why.summary:
            parts.append(label + ": " + why.summary)
    return "checklist updated: " + "; ".join(parts)


def _evidence(checklist: Sequence[ChecklistItem], *, changed_only: bool) -> tuple[Evidence, ...]:
    """Every item's evidence after a line naming the item and its state: the combined task's explanation
    keeps all of it (the items' own evidence objects, shared, not copied)."""
    out: list[Evidence] = []
    for entry in checklist:
        item = entry.item
        if item.closed is None:
            if changed_only:
                continue
            out.append(_OPEN.get(item.rule_id) or fact(item.rule_id, "open"))
        else:
            out.append(fact(LABELS.get(item.rule_id, item.rule_id), _state(item)))
        out += entry.evidence
    return tuple(out)


def _state(item: TaskItem) -> str:
    if item.closed is None:
        return "open"
    when = item.closed_on
    return f"{STATE_WORDS[item.closed]} {when.isoformat()}" if when else STATE_WORDS[item.closed]


def heading(checklist: Sequence[ChecklistItem], contact: str) -> str:
    """A combined task's ``body``: the line above its checklist. The checklist itself is ``items``; each
    connector renders it the way its CRM shows task bodies (``connectors.checklist``)."""
    left = len(checklist)
    for entry in checklist:
        if entry.item.closed is not None:
            left -= 1
    return f"One conversation with {contact}: {left} of {len(checklist)} open."
