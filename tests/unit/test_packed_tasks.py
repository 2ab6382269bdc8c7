"""The replay's packed tasks: what ``unpack`` rebuilds is exactly what ``pack`` was given."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given

from policies.model import AutoTask, CloseReason, TaskItem, TaskType
from policies.packed_tasks import pack, unpack
from policies.simulate import task_id_for
from tests.unit.strategies import auto_tasks

AT = datetime(2026, 3, 4, 9, 30, 12, 345678, tzinfo=UTC)


def _fields(task: AutoTask) -> list[tuple[object, type]]:
    """Every attribute with its exact type (``==`` alone would take an enum for its text)."""
    out: list[tuple[object, type]] = []
    for name in AutoTask.__slots__:
        value = getattr(task, name)
        out.append((value, type(value)))
        if name == "items":
            out.extend((getattr(i, n), type(getattr(i, n))) for i in value for n in TaskItem.__slots__)
    return out


def test_a_simulated_task_with_a_checklist_comes_back_equal_and_packed_as_bytes() -> None:
    item = TaskItem(
        "agreed_interval", "cf-1", AT, AT + timedelta(hours=2), CloseReason.SETTLED, date(2026, 3, 5)
    )
    tasks = (
        AutoTask(task_id_for("cf-1"), "cf-1", "conversation", AT, AT + timedelta(hours=2), items=(item,)),
        AutoTask(
            "00T000000000042",  # an id that is not the simulated CRM's
            "cf-2",
            "next_step",
            AT,
            AT + timedelta(days=3),
            is_open=False,
            owner_id="226",
            task_type=TaskType.EMAIL,
            subject="Follow up with Magnus Clarke (Lumen Dynamics Inc.)",
            modified_at=AT + timedelta(days=1),
        ),
    )
    packed = pack(tasks)
    assert isinstance(packed, bytes)
    rebuilt = unpack(packed)
    assert rebuilt == tasks
    assert [_fields(t) for t in rebuilt] == [_fields(t) for t in tasks]
    assert all(t.created_at.tzinfo is UTC for t in rebuilt)


def test_tasks_with_a_moment_outside_utc_are_kept_as_they_are() -> None:
    berlin = timezone(timedelta(hours=1))
    tasks = (AutoTask("t1", "cf-1", "next_step", AT, AT.astimezone(berlin)),)
    assert pack(tasks) is tasks
    assert unpack(pack(tasks)) is tasks


def test_no_tasks_pack_to_the_empty_tuple() -> None:
    assert pack(()) == ()
    assert unpack(()) == ()


@given(auto_tasks())
def test_any_tasks_come_back_exactly(tasks: tuple[AutoTask, ...]) -> None:
    tasks = tuple(replace(t, owner_id=f"o{i}", subject=f"Task {i} é") for i, t in enumerate(tasks))
    rebuilt = unpack(pack(tasks))
    assert rebuilt == tasks
    assert [_fields(t) for t in rebuilt] == [_fields(t) for t in tasks]
