"""The working state of one evaluation: the deal, its calendar and rules, and the actions decided so far.

Rules read the deal through this object and record actions and verdicts on it; the engine turns it into a
``Decision``. Building actions here keeps every rule's idempotency keys and texts consistent: a key is
``make_key(rule, deal, <what the intent aims at>)`` and never contains ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import NamedTuple

from policies.calendar import BusinessCalendar
from policies.facts import DealFacts
from policies.model import (
    Action,
    AutoTask,
    ChangeStage,
    CloseReason,
    CloseTask,
    CreateTask,
    Deal,
    DealField,
    Evidence,
    Explanation,
    FieldValue,
    FollowupState,
    Owner,
    Priority,
    RuleVerdict,
    SetDealFields,
    TaskItem,
    TaskType,
    UpdateTask,
    make_key,
)
from policies.policy import CompiledRules, Policy
from policies.policy_file import TaskText

AGREED = "agreed_interval"
NEXT_STEP = "next_step"
STOP = "stop"
NURTURE = "nurture"
QUALIFICATION = "qualification"
DECISION_MAKER = "decision_maker"
SIGNALS = "signals"
EXPIRY = "task_expiry"
RULE_IDS = (STOP, QUALIFICATION, NURTURE, NEXT_STEP, AGREED, SIGNALS, DECISION_MAKER, EXPIRY)
# The rule id of a combined task (``tasks.combine``, ``policies.combine``), and the rules whose requests
# all mean "talk to the customer" and so share one task per deal. The qualify task stays on its own.
COMBINED = "conversation"
COMBINABLE = frozenset({NURTURE, AGREED, NEXT_STEP, DECISION_MAKER})


def day(moment: datetime, calendar: BusinessCalendar) -> str:
    """A moment as the owner reads it: their local date (``calendar.local_day_name``, one call less)."""
    return calendar.day_names[moment]


@lru_cache(maxsize=4096)
def _bare_verdict(rule_id: str, fired: bool, reason: str) -> RuleVerdict:
    """Verdicts without evidence are immutable and mostly the same few: share them instead of rebuilding."""
    return RuleVerdict(rule_id, fired, reason)


@lru_cache(maxsize=4096)
def fact(label: str, value: str) -> Evidence:
    """Evidence that recurs across deals ("unanswered touches: 0", a date, a rule setting): shared instances,
    since looking one up costs a fraction of building a frozen dataclass."""
    return Evidence(label, value)


@lru_cache(maxsize=256)
def _all_skipped(reason: str) -> Mapping[str, RuleVerdict]:
    """Every rule's verdict "not evaluated: ``reason``", shared by every deal it applies to.

    Typed read-only and never written to; a plain dict rather than a ``MappingProxyType`` because
    ``{**skipped, **verdicts}`` copies a dict in C but a proxy one key at a time (six times slower).
    """
    return {rule_id: _bare_verdict(rule_id, False, reason) for rule_id in RULE_IDS}


_NO_ITEMS: Mapping[str, tuple[AutoTask, TaskItem]] = {}  # shared, never written: most deals have no items


class Request(NamedTuple):
    """What a rule asks the rep to do with the customer, before ``policies.combine.fold`` makes the task:
    a ``CreateTask`` of the rule alone, or an item of the deal's one combined task (cheaper to build than
    a task, and most requests of a deal end up as items)."""

    rule_id: str
    key: str
    subject: str
    body: str
    explanation: Explanation
    due_at: datetime
    fell_due_at: datetime | None
    task_type: TaskType
    priority: Priority
    contact_id: str | None


_new_request = (
    tuple.__new__
)  # builds a Request from a tuple in C: a NamedTuple's __new__ is a Python function


def state_fields(state: FollowupState, since: datetime, reason: str) -> dict[str, FieldValue]:
    """The deal fields that record crm-followup's own state of a deal: which, since when, and why."""
    return {
        DealField.FOLLOWUP_STATE: state.value,
        DealField.FOLLOWUP_STATE_SINCE: since,
        DealField.FOLLOWUP_REASON: reason,
    }


def task_of(deal: Deal, request: Request) -> CreateTask:
    """A request as the rule's own task (without ``tasks.combine``, or the only request of its deal)."""
    return CreateTask(
        key=request.key,
        deal_id=deal.id,
        rule_id=request.rule_id,
        explanation=request.explanation,
        owner_id=deal.owner_id,
        subject=request.subject,
        body=request.body,
        due_at=request.due_at,
        task_type=request.task_type,
        priority=request.priority,
        contact_id=request.contact_id,
        fell_due_at=request.fell_due_at,
    )


def expand_tasks(
    tasks: tuple[AutoTask, ...], virtual: dict[str, tuple[AutoTask, TaskItem]]
) -> list[AutoTask]:
    """The tasks as the rules see them: a combined task stands for one task per item of its checklist.

    Each item becomes a task of its rule with its own key, due date and state (open while both the item and
    the combined task are open), under an id of its own that ``virtual`` maps back to the combined task and
    the item; ``policies.combine`` turns what the rules do to these into writes on the combined task. An
    intent open in one task wins over a closed task with the same key (a task merged into another).
    """
    out: list[AutoTask] = []
    for task in tasks:
        if not task.items:
            out.append(task)
            continue
        for item in task.items:
            task_id = f"{task.id}#{item.key}"
            virtual[task_id] = (task, item)
            out.append(
                AutoTask(
                    task_id,
                    item.key,
                    item.rule_id,
                    item.added_at,
                    item.due_at,
                    task.is_open and item.closed is None,
                    task.owner_id,
                    task.task_type,
                    task.subject,
                )
            )
    open_keys = {t.key for t in out if t.is_open}
    return [t for t in out if t.is_open or t.key not in open_keys]


class Context:
    __slots__ = (
        "_due_now",
        "_values",
        "actions",
        "calendar",
        "closed_tasks",
        "combine",
        "compiled",
        "deal",
        "facts",
        "keys",
        "now",
        "open_tasks",
        "owner",
        "policy",
        "request_at",
        "requests",
        "rules",
        "step_gaps",
        "step_key",
        "tasks",
        "today",
        "verdicts",
        "virtual",
    )

    def __init__(
        self,
        policy: Policy,
        deal: Deal,
        now: datetime,
        owner: Owner | None,
        compiled: CompiledRules,
        calendar: BusinessCalendar,
        facts: DealFacts,
    ) -> None:
        self.policy = policy
        self.deal = deal
        self.now = now
        self.owner = owner
        self.compiled = compiled
        self.rules = compiled.rules
        self.calendar = calendar
        self.facts = facts
        self.today: date = calendar.local_date(now)
        self.actions: list[Action] = []
        self.requests: list[Request] = []  # requests to reach the customer (``tasks.combine``)
        self.request_at = 0  # where in ``actions`` the task for them goes
        self.verdicts: dict[str, RuleVerdict] = {}
        self.combine: bool = policy.tasks.combine
        # A combined task's items appear to the rules as tasks of their own (``expand_tasks``).
        self.virtual: Mapping[str, tuple[AutoTask, TaskItem]] = _NO_ITEMS
        tasks: tuple[AutoTask, ...] | list[AutoTask] = deal.auto_tasks
        if tasks and any(t.items for t in tasks):
            virtual: dict[str, tuple[AutoTask, TaskItem]] = {}
            tasks = expand_tasks(deal.auto_tasks, virtual)
            self.virtual = virtual
        self.tasks = tasks
        self.keys = {t.key for t in tasks} if tasks else set()
        if self.virtual:
            self.keys.update(t.key for t in deal.auto_tasks)
        self.open_tasks: list[AutoTask] = [t for t in tasks if t.is_open] if tasks else []
        self.closed_tasks: list[AutoTask] = [t for t in tasks if not t.is_open] if tasks else []
        self._due_now: datetime | None = None
        self._values: dict[str, str] | None = None
        # Worked out once per evaluation by ``policies.lifecycle`` (both the end rules and the next-step
        # task need them).
        self.step_gaps: list[str] | None = None
        self.step_key: str | None = None

    @classmethod
    def of(cls, policy: Policy, deal: Deal, now: datetime, owner: Owner | None, facts: DealFacts) -> Context:
        """The context for ``deal`` with the rules and calendar the policy gives it and its owner."""
        return cls(policy, deal, now, owner, policy.rules_for(deal, owner), policy.calendar_for(owner), facts)

    # -- verdicts --------------------------------------------------------------------------------

    def verdict(self, rule_id: str, fired: bool, reason: str, *evidence: Evidence) -> None:
        if evidence:
            self.verdicts[rule_id] = RuleVerdict(rule_id, fired, reason, evidence)
        else:
            self.verdicts[rule_id] = _bare_verdict(rule_id, fired, reason)

    def skip_remaining(self, reason: str) -> None:
        self.verdicts = {**_all_skipped(reason), **self.verdicts}  # the verdicts given so far win

    # -- tasks -----------------------------------------------------------------------------------

    def open_for(self, rule_id: str) -> list[AutoTask]:
        if not self.open_tasks:
            return []
        return [t for t in self.open_tasks if t.rule_id == rule_id]

    def close(self, task: AutoTask, rule_id: str, reason: CloseReason, explanation: Explanation) -> None:
        """Close one of crm-followup's own open tasks (those in ``deal.auto_tasks``, or an item of one)."""
        self.actions.append(
            CloseTask(
                key=make_key("close", task.key),
                deal_id=self.deal.id,
                rule_id=rule_id,
                explanation=explanation,
                task_id=task.id,
                task_key=task.key,
                reason=reason,
            )
        )
        self.open_tasks.remove(task)
        self.closed_tasks.append(task)

    def close_all(self, rule_id: str, reason: CloseReason, explanation: Explanation) -> int:
        tasks = list(self.open_tasks)
        for task in tasks:
            self.close(task, rule_id, reason, explanation)
        return len(tasks)

    def due_now(self) -> datetime:
        """When a task about something already overdue is due: the next working moment (or due_time)."""
        if self._due_now is None:
            self._due_now = self._compute_due_now()
        return self._due_now

    def _compute_due_now(self) -> datetime:
        due_time = self.policy.calendar.due_time
        moment = self.calendar.working_moment(self.now)
        if due_time is None:
            return moment
        local = self.calendar.local(moment)
        at = datetime.combine(local.date(), due_time, self.calendar.tz)
        if at < local:
            at = datetime.combine(self.calendar.next_business_day(local.date()), due_time, self.calendar.tz)
        return self.calendar.working_moment(at)

    def create(
        self,
        rule_id: str,
        key: str,
        text: TaskText,
        values: dict[str, str],
        explanation: Explanation,
        due_at: datetime,
        *,
        task_type: TaskType = TaskType.TODO,
        priority: Priority = Priority.MEDIUM,
        contact_id: str | None = None,
    ) -> None:
        """A task for the owner: the rule's own, or with ``tasks.combine`` a request that ``fold`` combines
        with the deal's other requests to reach the customer."""
        # Local dates as YYYY-MM-DD compare like the dates, and the rule has usually just shown this
        # one in its evidence: one memo instead of converting the moment again.
        names = self.calendar.day_names
        due_day = names[due_at]
        fell_due_at = None
        if due_day < names[self.now]:
            fell_due_at, due_at = due_at, self.due_now()
            due_day = names[due_at]
        used = text.fields
        if "due" in used:
            values["due"] = due_day
        if "evidence" in used:
            values["evidence"] = "\n".join(f"{e.label}: {e.value}" for e in explanation.evidence)
        subject, body = text.subject.render(values), text.body.render(values)
        request = _new_request(
            Request,
            (rule_id, key, subject, body, explanation, due_at, fell_due_at, task_type, priority, contact_id),
        )
        if self.combine and rule_id in COMBINABLE:
            # A request to reach the customer: ``policies.combine.fold`` makes the task (one per deal).
            if not self.requests:
                self.request_at = len(self.actions)
            self.requests.append(request)
        else:
            self.actions.append(task_of(self.deal, request))

    def move(
        self,
        task: AutoTask,
        rule_id: str,
        explanation: Explanation,
        due_at: datetime,
        *,
        subject: str | None = None,
        body: str | None = None,
    ) -> None:
        """Move one of crm-followup's own open tasks to ``due_at`` (with new texts, if given)."""
        self.actions.append(
            UpdateTask(
                key=make_key("update", task.key, due_at.isoformat()),
                deal_id=self.deal.id,
                rule_id=rule_id,
                explanation=explanation,
                task_id=task.id,
                task_key=task.key,
                due_at=due_at,
                subject=subject,
                body=body,
            )
        )

    # -- writes on the deal: each only if the deal is unchanged since it was read ------------------

    def change_stage(
        self, rule_id: str, key: str, explanation: Explanation, stage_id: str, close_reason: str | None = None
    ) -> None:
        deal = self.deal
        self.actions.append(
            ChangeStage(
                key=key,
                deal_id=deal.id,
                rule_id=rule_id,
                explanation=explanation,
                pipeline_id=deal.pipeline_id,
                stage_id=stage_id,
                close_reason=close_reason,
                expected_modified_at=deal.modified_at,
            )
        )

    def set_fields(
        self, rule_id: str, key: str, explanation: Explanation, fields: Mapping[str, FieldValue]
    ) -> None:
        self.actions.append(
            SetDealFields(
                key=key,
                deal_id=self.deal.id,
                rule_id=rule_id,
                explanation=explanation,
                fields=fields,
                expected_modified_at=self.deal.modified_at,
            )
        )

    # -- texts -----------------------------------------------------------------------------------

    def text_values(self, **extra: str) -> dict[str, str]:
        """The named fields a task template may use (see ``policies.templates.TEMPLATE_FIELDS``)."""
        if self._values is None:
            self._values = self._base_values()
        return {**self._values, **extra}

    def value(self, name: str) -> str:
        """One of the template fields of ``text_values`` (without copying them all)."""
        return self.base_values()[name]

    def base_values(self) -> Mapping[str, str]:
        """The template fields every text may use, read-only (``text_values`` copies them to add more)."""
        if self._values is None:
            self._values = self._base_values()
        return self._values

    def _base_values(self) -> dict[str, str]:
        deal = self.deal
        contact = deal.primary_contact
        signal = self.facts.last_signal
        agreement = deal.agreement
        amount = "no amount"
        if deal.amount is not None:
            amount = f"{deal.amount:,.0f} {deal.currency or ''}".strip()
        return {
            "deal_name": deal.name,
            "deal_id": deal.id,
            "stage": deal.stage.label or deal.stage.id,
            "amount": amount,
            "owner": (self.owner.name if self.owner is not None and self.owner.name else "the owner"),
            "contact": (contact.name or contact.email or "the customer") if contact else "the customer",
            "last_touch": (
                f"{day(signal.occurred_at, self.calendar)} ({signal.kind})" if signal else "none yet"
            ),
            "agreed_interval": f"{agreement.interval_days} days"
            if agreement.interval_days
            else "none agreed",
            "agreed_channel": agreement.channel.value if agreement.channel else "none agreed",
            "unanswered": str(self.facts.unanswered),
        }
