"""Task write-back: create, update and close our tasks in batches of 100, never creating one twice.

A task's idempotency key is the last line of its body. Before creating, the tasks already on the target
deals are known (from this process's pull, or read now: deal -> tasks associations plus a batch read), and
keys found there are reported ``already_applied``. A batch create is never blindly retried: if it fails in
a way that may have reached HubSpot (a dropped connection, a 5xx, a timeout, a 429), the retry layer's
next attempt first reads the deals' tasks again and sends only the still-missing ones. That is what keeps
a crash or a lost response from producing a duplicate task. (The waits are the retry layer's, logged like
every other call's; a failed look-up ends the attempts at once instead of nesting a retry loop in one.)

Updates and closes are idempotent PATCH-style batch updates and go through the ordinary retry layer. A
close with an empty ``task_key`` is of somebody's own task (``nurture.close_rep_tasks``): it is completed
with the reason below its text and never gets our key line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog

from connectors.base import ActionOutcome, OutcomeStatus
from connectors.errors import RetryLater, SkipRecord
from connectors.hubspot.aggregate import AggregateBuilder, KnownTask
from connectors.hubspot.batch_update import batch_update
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.fetch import BATCH_READ_SIZE, Fetcher, chunked
from connectors.hubspot.mapping import ENGAGEMENT_PROPERTIES, modified_stamp, parse_task_key
from connectors.hubspot.payloads import (
    rep_task_close_properties,
    task_close_properties,
    task_create_input,
    task_update_properties,
)
from connectors.hubspot.values import parse_datetime
from policies.model import CloseTask, CreateTask, UpdateTask

log = structlog.get_logger(__name__)


class _LookupFailed(Exception):
    """Reading a batch's tasks before re-sending it failed (after its own retries): stop the attempts."""

    def __init__(self, error: RetryLater) -> None:
        super().__init__(str(error))
        self.error = error


class TaskWriter:
    """Creates, updates and closes our tasks in batches (see the module docstring)."""

    def __init__(self, client: HubSpotClient, fetcher: Fetcher, builder: AggregateBuilder) -> None:
        self._client = client
        self._fetcher = fetcher
        self._builder = builder

    # ------------------------------------------------------------------------------------------ create

    def create(self, actions: Sequence[CreateTask]) -> dict[str, ActionOutcome]:
        known = self._builder.known_tasks
        unknown_deals = self._builder.without_known_tasks(a.deal_id for a in actions)
        if unknown_deals:
            self._builder.remember_tasks(unknown_deals)
        outcomes: dict[str, ActionOutcome] = {}
        todo: list[CreateTask] = []
        for action in actions:
            if action.key in known:
                outcomes[action.key] = _already(action.key, known[action.key].task_id)
            elif action.key not in {a.key for a in todo}:
                todo.append(action)
        for chunk in chunked(todo, BATCH_READ_SIZE):
            outcomes.update(self._create_chunk(list(chunk)))
        return outcomes  # by key: an action repeated in the input shares its first occurrence's outcome

    def _create_chunk(self, chunk: list[CreateTask]) -> dict[str, ActionOutcome]:
        outcomes: dict[str, ActionOutcome] = {}
        pending = list(chunk)
        attempts = 0

        def attempt() -> None:
            nonlocal pending, attempts
            attempts += 1
            if attempts > 1:  # the request before may have reached HubSpot: look before sending again
                try:
                    self._builder.remember_tasks(sorted({a.deal_id for a in pending}))
                except RetryLater as exc:  # already retried on its own; not to be multiplied by ours
                    raise _LookupFailed(exc) from None
                known = self._builder.known_tasks
                for action in pending:
                    if action.key in known:
                        outcomes[action.key] = ActionOutcome(
                            action.key, OutcomeStatus.APPLIED, (known[action.key].task_id,)
                        )
                pending = [a for a in pending if a.key not in known]
            if pending:
                outcomes.update(self._send_create(pending))
                pending = []

        try:
            self._client.retrying(attempt)
        except (RetryLater, _LookupFailed) as failure:
            error = failure.error if isinstance(failure, _LookupFailed) else failure
            return {**outcomes, **{a.key: _retry_later(a.key, error) for a in pending}}
        except SkipRecord:
            if len(pending) == 1:
                return {**outcomes, pending[0].key: _failed(pending[0].key, "HubSpot rejected the task")}
            for action in pending:  # isolate the record HubSpot refuses; the others still go in
                outcomes.update(self._create_chunk([action]))
        return outcomes

    def _send_create(self, chunk: list[CreateTask]) -> dict[str, ActionOutcome]:
        inputs = [task_create_input(a) for a in chunk]
        response = self._client.send_once(
            "tasks.batch_create",
            "tasks.batch",
            "create",
            batch_input_simple_public_object_batch_input_for_create={"inputs": inputs},
        )
        body: Mapping[str, Any] = response.body or {}
        by_key: dict[str, str] = {}
        stamps: dict[str, datetime | None] = {}  # task id -> its stamp as HubSpot answered
        for result in body.get("results") or []:
            stamps[str(result["id"])] = modified_stamp(result)
            key = result.get("objectWriteTraceId")
            if not key:
                found = parse_task_key((result.get("properties") or {}).get("hs_task_body"))
                key = found[0] if found else None
            if key:
                by_key[str(key)] = str(result["id"])
        if not by_key and len(body.get("results") or []) == len(chunk):
            by_key = {a.key: str(r["id"]) for a, r in zip(chunk, body["results"], strict=True)}
        outcomes: dict[str, ActionOutcome] = {}
        for action, item in zip(chunk, inputs, strict=True):
            task_id = by_key.get(action.key)
            if task_id is None:
                outcomes[action.key] = _failed(
                    action.key, f"HubSpot did not create the task (HTTP {response.status})"
                )
                continue
            self._builder.known_tasks[action.key] = KnownTask(
                task_id, action.deal_id, action.key, action.rule_id, item["properties"]["hs_task_body"], True
            )
            outcomes[action.key] = ActionOutcome(
                action.key, OutcomeStatus.APPLIED, (task_id,), modified_at=stamps.get(task_id)
            )
        return outcomes

    # ---------------------------------------------------------------------------------- update / close

    def update_and_close(self, actions: Sequence[UpdateTask | CloseTask]) -> dict[str, ActionOutcome]:
        outcomes: dict[str, ActionOutcome] = {}
        current = self._current(actions)
        updates: dict[str, dict[str, str]] = {}
        owners: dict[str, list[str]] = {}  # task id -> action keys writing to it
        for action in actions:
            found = current.get(action.task_id)
            if found is None:
                outcomes[action.key] = _failed(action.key, f"task {action.task_id} is gone")
                continue
            task, now_props = found
            if isinstance(action, CloseTask):
                if not task.is_open:
                    outcomes[action.key] = _already(action.key, task.task_id)
                    continue
                props = (
                    task_close_properties(
                        action.reason, task.body, action.task_key, action.rule_id, action.items, action.body
                    )
                    if action.task_key
                    else rep_task_close_properties(action.reason, action.explanation.summary, task.body)
                )
            else:
                props = task_update_properties(action, task.body)
                if all(_same_task_value(k, now_props.get(k), v) for k, v in props.items()):
                    outcomes[action.key] = _already(action.key, task.task_id)
                    continue
            updates.setdefault(action.task_id, {}).update(props)
            owners.setdefault(action.task_id, []).append(action.key)
        for chunk in chunked(list(updates), BATCH_READ_SIZE):
            try:
                response = batch_update(self._client, "tasks", updates, chunk)
            except RetryLater as exc:
                for task_id in chunk:
                    outcomes.update({k: _retry_later(k, exc) for k in owners[task_id]})
                continue
            except SkipRecord:
                for task_id in chunk:
                    outcomes.update(
                        {
                            k: _failed(k, f"HubSpot rejected the update of task {task_id}")
                            for k in owners[task_id]
                        }
                    )
                continue
            written = {str(r["id"]): modified_stamp(r) for r in (response.body or {}).get("results") or []}
            for task_id in chunk:
                ok = task_id in written
                if ok:
                    self._after_write(current[task_id][0], updates[task_id])
                for key in owners[task_id]:
                    outcomes[key] = (
                        ActionOutcome(key, OutcomeStatus.APPLIED, (task_id,), modified_at=written[task_id])
                        if ok
                        else _failed(key, f"task {task_id} was not updated")
                    )
        return outcomes

    def _current(
        self, actions: Sequence[UpdateTask | CloseTask]
    ) -> dict[str, tuple[KnownTask, Mapping[str, Any]]]:
        """Our tasks as HubSpot has them now, by task id: read fresh, 100 per call (status and body)."""
        wanted = list(dict.fromkeys(a.task_id for a in actions))
        found = self._fetcher.batch_read("tasks", wanted, ENGAGEMENT_PROPERTIES["tasks"])
        deal_of = {a.task_id: a.deal_id for a in actions}
        current: dict[str, tuple[KnownTask, Mapping[str, Any]]] = {}
        for task_id, record in found.items():
            props = record.get("properties") or {}
            body = str(props.get("hs_task_body") or "")
            key = parse_task_key(body)
            task = KnownTask(
                task_id,
                deal_of[task_id],
                key[0] if key else "",
                key[1] if key else "",
                body,
                str(props.get("hs_task_status") or "").upper() != "COMPLETED",
            )
            current[task_id] = (task, props)
        return current

    def _after_write(self, task: KnownTask, props: Mapping[str, str]) -> None:
        if not task.key:
            return
        self._builder.known_tasks[task.key] = replace(
            task,
            body=props.get("hs_task_body", task.body),
            is_open=props.get("hs_task_status", "NOT_STARTED") != "COMPLETED" and task.is_open,
        )


def _same_task_value(name: str, current: object, wanted: str) -> bool:
    if name == "hs_timestamp":
        a, b = parse_datetime(current), parse_datetime(wanted)
        return a is not None and a == b
    return str(current or "").strip() == wanted.strip()


def _already(key: str, *crm_ids: str) -> ActionOutcome:
    return ActionOutcome(key, OutcomeStatus.ALREADY_APPLIED, tuple(crm_ids))


def _failed(key: str, message: str) -> ActionOutcome:
    return ActionOutcome(key, OutcomeStatus.FAILED, message=message)


def _retry_later(key: str, exc: RetryLater) -> ActionOutcome:
    return ActionOutcome(key, OutcomeStatus.RETRY_LATER, message=str(exc))
