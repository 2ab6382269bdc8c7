"""The backtest's simulated tasks of one deal kept as one ``bytes`` object, rebuilt when the deal is.

The replay's simulated world keeps every task the policy created on its deal, closed ones too (the
agreed-interval rule chains the next follow-up on the ones done): 260,775 of them at 100,000 deals x 90
days, each an ``AutoTask`` with its own strings, datetimes and checklist items. Packed (``marshal``:
texts as UTF-8, moments as microseconds since the epoch, enums by value, a task's id left out when it is
the simulated CRM's ``task-<key>``) a task takes about a quarter of the memory; ``unpack`` rebuilds equal
objects. Tasks whose moments are not in UTC (``datetime.UTC``) are kept as they are (``pack`` returns the
tuple itself), so that what is rebuilt is always exactly what was kept.

Pure: no I/O.
"""

from __future__ import annotations

import marshal
from datetime import UTC, date, datetime
from typing import Any

from policies.history import from_micros as _moment
from policies.history import micros
from policies.model import AutoTask, CloseReason, TaskItem, TaskType
from policies.simulate import task_id_for

Packed = bytes | tuple[AutoTask, ...]  # bytes: packed; a tuple: kept as given

_TASK_TYPES = {t.value: t for t in TaskType}
_CLOSE_REASONS = {r.value: r for r in CloseReason}


class _NotPackable(Exception):
    """A moment not in UTC: the tasks are kept as objects."""


def _us(moment: datetime) -> int:
    if moment.tzinfo is not UTC:
        raise _NotPackable
    return micros(moment)


def _item(item: TaskItem) -> tuple[Any, ...]:
    closed_on = item.closed_on
    if closed_on is not None and type(closed_on) is not date:
        raise _NotPackable
    return (
        item.rule_id,
        item.key,
        _us(item.added_at),
        _us(item.due_at),
        item.closed.value if item.closed is not None else None,
        closed_on.toordinal() if closed_on is not None else None,
    )


def _task(task: AutoTask) -> tuple[Any, ...]:
    return (
        None if task.id == task_id_for(task.key) else task.id,
        task.key,
        task.rule_id,
        _us(task.created_at),
        _us(task.due_at),
        task.is_open,
        task.owner_id,
        task.task_type.value,
        task.subject,
        tuple(_item(i) for i in task.items),
        _us(task.modified_at) if task.modified_at is not None else None,
    )


def pack(tasks: tuple[AutoTask, ...]) -> Packed:
    """``tasks`` as one bytes object, or the tuple itself when one of its moments is not in UTC."""
    if not tasks:
        return ()
    try:
        return marshal.dumps(tuple(_task(t) for t in tasks))
    except _NotPackable:
        return tasks


def unpack(packed: Packed) -> tuple[AutoTask, ...]:
    """The tasks ``pack`` was given (equal objects)."""
    if not isinstance(packed, bytes):
        return packed
    rows = marshal.loads(packed)  # noqa: S302 (bytes ``pack`` made)
    return tuple(
        AutoTask(
            id=task_id if task_id is not None else task_id_for(key),
            key=key,
            rule_id=rule_id,
            created_at=_moment(created),
            due_at=_moment(due),
            is_open=is_open,
            owner_id=owner_id,
            task_type=_TASK_TYPES[kind],
            subject=subject,
            items=tuple(
                TaskItem(
                    item_rule,
                    item_key,
                    _moment(added),
                    _moment(item_due),
                    _CLOSE_REASONS[closed] if closed is not None else None,
                    date.fromordinal(closed_on) if closed_on is not None else None,
                )
                for item_rule, item_key, added, item_due, closed, closed_on in items
            ),
            modified_at=_moment(modified) if modified is not None else None,
        )
        for task_id, key, rule_id, created, due, is_open, owner_id, kind, subject, items, modified in rows
    )
