"""JSON for the domain model: snapshots (``followup plan --snapshot``, tests) and the worker's mirror.

A snapshot is one CRM's state at a moment: owners, pipelines and deals with everything the rules read.
The format is the domain model itself, validated strictly by pydantic; its JSON Schema comes from
``snapshot_schema()``. An optional ``history`` (``policies.history.SnapshotHistory``: each deal's recorded
field, contact and activity-logging changes) makes a snapshot replayable by ``followup backtest``;
snapshots without it read as before (docs/backtest.md describes the format).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from policies.history import SnapshotHistory
from policies.model import Action, Deal, Decision, Owner, Pipeline


@dataclass(frozen=True, slots=True)
class Snapshot:
    crm: str
    owners: tuple[Owner, ...] = ()
    pipelines: tuple[Pipeline, ...] = ()
    deals: tuple[Deal, ...] = ()
    taken_at: datetime | None = None
    history: SnapshotHistory | None = None  # for the backtest; ``None``: a snapshot of the present only


_snapshot = TypeAdapter(Snapshot)
_deal = TypeAdapter(Deal)
_action = TypeAdapter(Action)
_decision = TypeAdapter(Decision)


def snapshot_from_json(data: bytes | str) -> Snapshot:
    """Parse a snapshot; raises ``pydantic.ValidationError`` naming the path of every bad value."""
    return _snapshot.validate_json(data)


def snapshot_to_json(snapshot: Snapshot, *, indent: int | None = None) -> bytes:
    # A snapshot without history is written as before the history existed (no "history": null).
    exclude = {"history"} if snapshot.history is None else None
    return _snapshot.dump_json(snapshot, indent=indent, exclude=exclude)


def deal_from_json(data: bytes | str) -> Deal:
    return _deal.validate_json(data)


def deal_to_json(deal: Deal) -> bytes:
    return _deal.dump_json(deal)


def action_to_dict(action: Action) -> dict[str, Any]:
    """A JSON-ready dict of an action, with its kind; for ``plan --json``, the ledger and the audit trail."""
    from policies.model import action_kind

    out: dict[str, Any] = {"kind": action_kind(action)}
    out.update(_action.dump_python(action, mode="json"))
    return out


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = _decision.dump_python(decision, mode="json")
    out["actions"] = [action_to_dict(a) for a in decision.actions]
    return out


def snapshot_schema() -> dict[str, Any]:
    return _snapshot.json_schema()


def action_from_dict(data: dict[str, Any]) -> Action:
    """The inverse of ``action_to_dict`` (the ledger stores actions as JSON and replays them)."""
    from policies.model import ACTION_KINDS

    by_kind = {kind: cls for cls, kind in ACTION_KINDS.items()}
    payload = dict(data)
    kind = payload.pop("kind")
    cls = by_kind[kind]
    return TypeAdapter(cls).validate_python(payload)
