"""JSON for the domain model: snapshots (``followup plan --snapshot``, tests) and the worker's mirror.

A snapshot is one CRM's state at a moment: owners, pipelines and deals with everything the rules read.
The format is the domain model itself, validated strictly by pydantic; its JSON Schema comes from
``snapshot_schema()``. An optional ``history`` (``policies.history.SnapshotHistory``: each deal's recorded
field, contact and activity-logging changes) makes a snapshot replayable by ``followup backtest``;
snapshots without it read as before (docs/backtest.md describes the format).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from config.jsonsource import JsonText
from policies.model import Action, Deal, Decision
from policies.snapshot import Snapshot

__all__ = ["Snapshot"]  # defined in policies.snapshot (no JSON reading there), used through here


_snapshot = TypeAdapter(Snapshot)
_deal = TypeAdapter(Deal)
_action = TypeAdapter(Action)
_decision = TypeAdapter(Decision)


def snapshot_from_json(data: bytes | str) -> Snapshot:
    """Parse a snapshot; raises ``pydantic.ValidationError`` naming the path of every bad value."""
    return _snapshot.validate_json(data)


def load_snapshot(source: JsonText) -> Snapshot:
    """Parse and check a snapshot file's text; raises ``ConfigError`` with every problem at ``file:line:col``.

    Syntax and shape come from pydantic (nesting is limited to 200 levels there); values the engine could not
    compute with (unknown time zones, non-finite or huge numbers, far-off dates) from
    ``policies.snapshot_check``.
    """
    from config.errors import ConfigError
    from policies.snapshot_check import value_problems

    try:
        snapshot = snapshot_from_json(source.text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise ConfigError(
                [source.syntax_problem(str(errors[0]["msg"]).removeprefix("Invalid JSON: "))]
            ) from None
        found = _union_members_merged(source, errors)
    else:
        found = [(_original_index(source, loc), message) for loc, message in value_problems(snapshot)]
        if not found:
            return snapshot
    places = source.places(loc for loc, _ in found)
    raise ConfigError(
        f"{places[loc]}: {'.'.join(map(str, loc)) or '(top level)'}: {message}" for loc, message in found
    )


def _union_members_merged(source: JsonText, errors: list[Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """pydantic reports a value that fits no member of a union once per member (``fields.x.str``,
    ``fields.x.int``, ...): one line at the value instead, listing what it should have been."""
    paths = source.key_paths(tuple(e["loc"]) for e in errors)
    known = source.existing(paths.values())
    found: list[tuple[tuple[str | int, ...], str]] = []
    merged: dict[tuple[str | int, ...], list[str]] = {}
    for error in errors:
        path = paths[tuple(error["loc"])]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] != "missing" and path not in known and path[:-1] in known and len(path) > 1:
            if path[:-1] not in merged:
                merged[path[:-1]] = []
                found.append((path[:-1], ""))
            merged[path[:-1]].append(message.removeprefix("Input should be "))
        else:
            found.append((path, message))
    return [
        (path, message or "should be " + " or ".join(dict.fromkeys(merged[path]))) for path, message in found
    ]


def _original_index(source: JsonText, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """``Deal`` sorts its activities by time: point a problem in one back at its place in the file."""
    if len(loc) < 4 or loc[0] != "deals" or loc[2] != "activities":
        return loc
    import json

    deal, index = loc[1], loc[3]
    wanted = snapshot_from_json(source.text).deals[int(deal)].activities[int(index)].id
    raw = json.loads(source.text)["deals"][int(deal)]["activities"]
    original = next((i for i, a in enumerate(raw) if a.get("id") == wanted), index)
    return (*loc[:3], original, *loc[4:])


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


# The canonical deal fields whose values JSON carries as ISO strings: a replay gives them their type back.
_TYPED_FIELDS: dict[str, type[date] | type[datetime]] = {
    "next_step_date": date,
    "followup_state_since": datetime,
}


def action_from_dict(data: dict[str, Any]) -> Action:
    """The inverse of ``action_to_dict`` (the ledger stores actions as JSON and replays them).

    ``SetDealFields`` values of the canonical date and datetime fields come back as dates and datetimes
    (JSON has only their strings), so a replayed action means what the engine decided; other fields are
    the policy's own and stay as JSON gave them.
    """
    from policies.model import ACTION_KINDS, SetDealFields

    by_kind = {kind: cls for cls, kind in ACTION_KINDS.items()}
    payload = dict(data)
    kind = payload.pop("kind")
    cls = by_kind[kind]
    action = TypeAdapter(cls).validate_python(payload)
    if isinstance(action, SetDealFields):
        typed = {
            name: TypeAdapter(_TYPED_FIELDS[name]).validate_python(value)
            if name in _TYPED_FIELDS and isinstance(value, str)
            else value
            for name, value in action.fields.items()
        }
        action = replace(action, fields=typed)
    return action
