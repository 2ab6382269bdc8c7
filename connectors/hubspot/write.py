"""Batched write-back: one outcome per action, in input order, whatever happens to the others.

Actions are grouped by kind and written in batches of 100 (tasks and deals) or one membership call per
list. Deal writes (ChangeStage, SetDealFields) are conditional: the deals are re-read in a batch and an
action whose ``expected_modified_at`` no longer matches ``hs_lastmodifieddate`` is not written
(``conflict``), unless the deal already holds exactly the values the action wants (a write of ours whose
response was lost), which is ``already_applied``. Nurture lists are MANUAL contact lists looked up by name
(created when missing, ids cached); adding a member twice is a no-op, which makes retries safe.

Order, so that our own writes never count as someone else's change: the deals are checked first, before
anything of this apply is written (closing or creating a task on a deal moves its ``hs_lastmodifieddate``
through HubSpot's activity roll-ups); then tasks are updated, closed and created; then the checked deals are
updated, so the stamp HubSpot answers for a deal comes after the roll-ups of our own task writes (in the
sandbox, which computes roll-ups at once; HubSpot may compute them later, and the next pull then restamps
the deal without re-reading it); then list memberships. A deal whose check conflicts (or whose check could
not be made) keeps its stop or nurture whole: the task closes of that stop and the enrolment wait with it.

Transient failures that outlast the retry layer become ``retry_later`` outcomes for the actions of that
batch; only ``FixConfiguration`` (auth, scopes, missing properties) stops the whole apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from connectors.base import ActionOutcome, OutcomeStatus
from connectors.errors import RetryLater, SkipRecord
from connectors.held_back import held_back
from connectors.hubspot.batch_update import batch_update
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.errors import HubSpotRejected
from connectors.hubspot.fetch import BATCH_READ_SIZE, Fetcher, chunked
from connectors.hubspot.lists import find_list, manual_list_request
from connectors.hubspot.mapping import modified_stamp
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.payloads import deal_write_properties
from connectors.hubspot.values import format_value, ms, parse_datetime
from connectors.hubspot.write_tasks import TaskWriter
from policies.model import (
    Action,
    ChangeStage,
    CloseTask,
    CreateTask,
    DealField,
    EnrolInNurture,
    ReactivateFromNurture,
    SetDealFields,
    UpdateTask,
)

log = structlog.get_logger(__name__)

MEMBERSHIP_BATCH = 1000


class Writer:
    """Writes actions back in batches (deal properties, nurture list memberships); tasks through ``tasks``."""

    def __init__(
        self, client: HubSpotClient, fetcher: Fetcher, options: HubSpotOptions, tasks: TaskWriter
    ) -> None:
        self._client = client
        self._fetcher = fetcher
        self._options = options
        self._tasks = tasks
        self._list_ids: dict[str, str] = {}
        self._field_names = {f: options.property_for(f) for f in DealField}

    def apply(self, actions: Sequence[Action]) -> list[ActionOutcome]:
        outcomes: dict[str, ActionOutcome] = {}
        deal_writes = [a for a in actions if isinstance(a, ChangeStage | SetDealFields)]
        checked = _Checked()
        if deal_writes:
            outcomes.update(self._guard(deal_writes, lambda group: self._check_deals(group, checked)))
        held = held_back(actions, outcomes)
        outcomes.update(held)
        rest = [a for a in actions if a.key not in held]
        closes = [a for a in rest if isinstance(a, UpdateTask | CloseTask)]
        creates = [a for a in rest if isinstance(a, CreateTask)]
        nurture = [a for a in rest if isinstance(a, EnrolInNurture | ReactivateFromNurture)]
        if closes:
            outcomes.update(self._guard(closes, self._tasks.update_and_close))
        if creates:
            outcomes.update(self._guard(creates, self._tasks.create))
        if checked.merged:
            pending = [a for a in deal_writes if a.key not in outcomes]
            outcomes.update(self._guard(pending, lambda _group: self._update_deals(checked)))
        if nurture:
            outcomes.update(self._guard(nurture, self._write_nurture))
        result = [
            outcomes.get(a.key) or ActionOutcome(a.key, OutcomeStatus.FAILED, message="not applied")
            for a in actions
        ]
        log.info(
            "hubspot_apply_done",
            actions=len(actions),
            **{s.value: sum(1 for o in result if o.status is s) for s in OutcomeStatus},
        )
        return result

    @staticmethod
    def _guard(
        actions: Sequence[Any], write: Callable[[Any], dict[str, ActionOutcome]]
    ) -> dict[str, ActionOutcome]:
        """Run one group's writer; a failure of the group as a whole becomes every action's outcome."""
        try:
            return write(actions)
        except RetryLater as exc:
            return {a.key: ActionOutcome(a.key, OutcomeStatus.RETRY_LATER, message=str(exc)) for a in actions}
        except SkipRecord as exc:
            return {a.key: _failed(a.key, str(exc)) for a in actions}

    # ------------------------------------------------------------------------------------------- deals

    def _wanted(self, action: ChangeStage | SetDealFields) -> dict[str, str]:
        if isinstance(action, ChangeStage):
            props = {"pipeline": action.pipeline_id, "dealstage": action.stage_id}
            if action.close_reason is not None:
                props[self._field_names[DealField.CLOSE_REASON]] = format_value(action.close_reason)
            return props
        return deal_write_properties(action.fields, self._field_names)

    def _check_deals(
        self, actions: Sequence[ChangeStage | SetDealFields], checked: _Checked
    ) -> dict[str, ActionOutcome]:
        """Read the deals (before any write of this apply) and decide which writes go ahead.

        Returns the outcomes decided without writing (conflict, already applied, gone); the writes that go
        ahead are merged per deal into ``checked``, for ``_update_deals``.
        """
        wanted = {a.key: self._wanted(a) for a in actions}
        names = sorted({"hs_lastmodifieddate", *(n for props in wanted.values() for n in props)})
        current = self._fetcher.batch_read("deals", [a.deal_id for a in actions], names)
        outcomes: dict[str, ActionOutcome] = {}
        for action in actions:
            record = current.get(action.deal_id)
            if record is None:
                outcomes[action.key] = _failed(action.key, f"deal {action.deal_id} is gone")
                continue
            props = record.get("properties") or {}
            if all(_same(props.get(k), v) for k, v in wanted[action.key].items()):
                outcomes[action.key] = ActionOutcome(
                    action.key, OutcomeStatus.ALREADY_APPLIED, (action.deal_id,)
                )
                continue
            modified = parse_datetime(props.get("hs_lastmodifieddate"))
            expected = action.expected_modified_at
            if expected is not None and (modified is None or ms(modified) != ms(expected)):
                log.info("hubspot_deal_write_conflict", deal_id=action.deal_id, key=action.key)
                outcomes[action.key] = ActionOutcome(
                    action.key,
                    OutcomeStatus.CONFLICT,
                    message=f"deal {action.deal_id} changed since it was read",
                )
                continue
            checked.merged.setdefault(action.deal_id, {}).update(wanted[action.key])
            checked.writers.setdefault(action.deal_id, []).append(action.key)
        return outcomes

    def _update_deals(self, checked: _Checked) -> dict[str, ActionOutcome]:
        """Write the checked deals, 100 per call; outcomes carry the stamp HubSpot answered."""
        merged, writers = checked.merged, checked.writers
        outcomes: dict[str, ActionOutcome] = {}
        for chunk in chunked(list(merged), BATCH_READ_SIZE):
            try:
                response = batch_update(self._client, "deals", merged, chunk)
                results = (response.body or {}).get("results") or []
                written = {str(r["id"]): modified_stamp(r) for r in results}
            except SkipRecord as exc:
                written = self._write_deals_one_by_one(chunk, merged) if len(chunk) > 1 else {}
                log.info("hubspot_deal_batch_rejected", deals=len(chunk), status=getattr(exc, "status", None))
            for deal_id in chunk:
                for key in writers[deal_id]:
                    outcomes[key] = (
                        ActionOutcome(key, OutcomeStatus.APPLIED, (deal_id,), modified_at=written[deal_id])
                        if deal_id in written
                        else _failed(key, f"HubSpot rejected the update of deal {deal_id}")
                    )
        return outcomes

    def _write_deals_one_by_one(
        self, chunk: Sequence[str], merged: Mapping[str, dict[str, str]]
    ) -> dict[str, datetime | None]:
        written: dict[str, datetime | None] = {}
        for deal_id in chunk:
            try:
                response = batch_update(self._client, "deals", merged, [deal_id])
            except SkipRecord:
                continue
            results = (response.body or {}).get("results") or []
            written[deal_id] = modified_stamp(results[0]) if results else None
        return written

    # ----------------------------------------------------------------------------------------- nurture

    def list_id(self, name: str, *, create: bool = True) -> str | None:
        """The id of the MANUAL contact list ``name``; created when missing (and ``create``)."""
        if name in self._list_ids:
            return self._list_ids[name]
        list_id = self._find_list(name)
        if list_id is None and create:
            try:
                request = manual_list_request(name)
                response = self._client.send_once(
                    "lists.create", "lists", "create", list_create_request=request
                )
                list_id = str(((response.body or {}).get("list") or {}).get("listId") or "") or None
            except (RetryLater, HubSpotRejected):
                # The create may have gone through (lost response) or raced another writer (409): look again.
                list_id = self._find_list(name)
                if list_id is None:
                    raise
        if list_id is not None:
            self._list_ids[name] = list_id
        return list_id

    def _find_list(self, name: str) -> str | None:
        found = find_list(self._client, name) or {}
        return str(found["listId"]) if found.get("listId") else None

    def _write_nurture(
        self, actions: Sequence[EnrolInNurture | ReactivateFromNurture]
    ) -> dict[str, ActionOutcome]:
        outcomes: dict[str, ActionOutcome] = {}
        groups: dict[tuple[str, str], list[EnrolInNurture | ReactivateFromNurture]] = {}
        for action in actions:
            if isinstance(action, ReactivateFromNurture) and not action.remove_from_nurture:
                outcomes[action.key] = ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED)
                continue
            op = "add" if isinstance(action, EnrolInNurture) else "remove"
            groups.setdefault((action.nurture, op), []).append(action)
        for (name, op), group in groups.items():
            list_id = self.list_id(name, create=op == "add")
            if list_id is None:  # removing from a list that does not exist: nobody is in it
                outcomes.update({a.key: ActionOutcome(a.key, OutcomeStatus.ALREADY_APPLIED) for a in group})
                continue
            contact_ids = list(dict.fromkeys(c for a in group for c in a.contact_ids))
            changed: set[str] = set()
            missing: set[str] = set()
            for chunk in chunked(contact_ids, MEMBERSHIP_BATCH):
                response = self._client.send(
                    f"lists.memberships_{op}", "memberships", op, list_id, request_body=list(chunk)
                )
                body = response.body or {}
                field = "recordsIdsAdded" if op == "add" else "recordIdsRemoved"
                changed.update(str(i) for i in body.get(field) or body.get("recordIdsAdded") or [])
                missing.update(str(i) for i in body.get("recordIdsMissing") or [])
            for action in group:
                gone = [c for c in action.contact_ids if c in missing]
                if gone and op == "add":
                    outcomes[action.key] = _failed(action.key, f"contacts {', '.join(gone)} are gone")
                elif any(c in changed for c in action.contact_ids):
                    outcomes[action.key] = ActionOutcome(action.key, OutcomeStatus.APPLIED, (list_id,))
                else:
                    outcomes[action.key] = ActionOutcome(
                        action.key, OutcomeStatus.ALREADY_APPLIED, (list_id,)
                    )
        return outcomes


@dataclass
class _Checked:
    """Deal writes that passed their check: merged properties per deal, and the action keys behind them."""

    merged: dict[str, dict[str, str]] = field(default_factory=dict)
    writers: dict[str, list[str]] = field(default_factory=dict)


def _same(current: object, wanted: str) -> bool:
    """Whether a deal property already holds the value we would write (numbers and dates compared as such)."""
    if current is None or current == "":
        return wanted == ""
    if str(current) == wanted:
        return True
    a, b = parse_datetime(current), parse_datetime(wanted)
    if a is not None and b is not None:
        return a == b
    try:
        return float(str(current)) == float(wanted)
    except ValueError:
        return str(current).casefold() == wanted.casefold()


def _failed(key: str, message: str) -> ActionOutcome:
    return ActionOutcome(key, OutcomeStatus.FAILED, message=message)
