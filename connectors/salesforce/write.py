"""Write-back: engine actions become sObject Collections calls, one outcome per action, in input order.

One ``apply`` costs two rounds of Composite calls, each call carrying up to 5 queries and collections (the
Composite limit, ``composite``): the reads that make the writes safe, all in one bundle of queries; then
every write of the apply in collections of 200 (Tasks and CampaignMembers created; Task updates and closes,
Opportunity stage and field changes, member statuses updated; members removed), whatever their kind,
with the read-back of the changed opportunities in the last call's free slots. So a cycle costs about
``ceil(reads / 5) + ceil((records / 200 + opportunities / 500) / 5)`` calls per apply batch:

* stage and field changes are written only if the opportunity's ``LastModifiedDate`` (or
  ``SystemModstamp``) still equals the action's ``expected_modified_at`` (one stamp query per 500
  opportunities, which also reads the fields the actions write);
  otherwise the outcome is CONFLICT and the engine looks again next cycle, unless the opportunity already
  holds exactly what the action would write (our own write whose answer was lost, applied again after a
  crash): that is ALREADY_APPLIED.
  Changes to the same opportunity in one ``apply`` are merged into one record, so our own first write does
  not make the second one conflict. (Collections have no conditional update; the window between the read
  and the write is a few hundred milliseconds.) The written opportunities' new ``LastModifiedDate`` is read
  back after the write, by queries that follow the collections in the same Composite call (subrequests run
  in order), or at once after it for a record the retry loop wrote later (``_with_stamps``), and travels
  with the outcomes: the worker remembers it, so the next pull does not take our own write for someone
  else's and the next conditional write expects it.
* the opportunities are checked before anything is planned, so a stop or nurture whose stage or state
  change conflicts keeps its task closes and enrolment back with it (``connectors.held_back``);
* a close reads which of the Tasks are still open first (one query per ``ids_per_query`` Tasks):
  a Task closed or deleted meanwhile (by a rep, or by our own earlier close) is left alone
  (``already_applied``, nothing written), and on somebody's own Task (``nurture.close_rep_tasks``, an empty
  ``task_key``) the reason goes below its description;
* nurture actions look up their campaign by name and the contacts' current membership first, so an
  existing member is ALREADY_APPLIED without a write; a member that appears meanwhile is refused with
  DUPLICATE_VALUE, which is also ALREADY_APPLIED.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog

from connectors.base import ActionOutcome, OutcomeStatus
from connectors.errors import RetryLater
from connectors.held_back import held_back
from connectors.salesforce import soql
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.composite import CollectionWriter, RecordResult, RecordStatus
from connectors.salesforce.payloads import (
    PayloadConfig,
    campaign_member_record,
    close_rep_task_record,
    close_task_record,
    create_task_record,
    opportunity_changes,
    update_task_record,
)
from connectors.salesforce.values import parse_datetime, parse_number, written_by
from policies.model import (
    Action,
    ChangeStage,
    CloseTask,
    CreateTask,
    EnrolInNurture,
    ReactivateFromNurture,
    SetDealFields,
    UpdateTask,
)

log = structlog.get_logger(__name__)

ALREADY = OutcomeStatus.ALREADY_APPLIED
ALREADY_CODES = frozenset({"DUPLICATE_VALUE"})
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"})


@dataclass(slots=True)
class _Plan:
    """Records to write, each pointing back at the actions it serves."""

    creates: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)
    updates: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)
    deletes: list[tuple[str, list[int]]] = field(default_factory=list)
    fixed: dict[int, ActionOutcome] = field(default_factory=dict)  # decided without writing
    # per action: codes that count as "already so" (closing a deleted task, removing a gone member)
    gone_is_done: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Found:
    """What the plan read before writing (``Writer._read_before``)."""

    opportunities: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # checked, by id
    open_tasks: dict[str, str | None] = field(default_factory=dict)  # still open: description by id
    campaigns: dict[str, str] = field(default_factory=dict)  # nurture campaign ids by name
    members: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)  # (campaign, contact)


class WriteContext(Protocol):
    """What the writer asks the connector's memory of the org (``directory.OrgDirectory``)."""

    def owner_time_zone(self, owner_id: str | None) -> str | None: ...

    def task_owner_time_zones(self, task_ids: Sequence[str]) -> Mapping[str, str | None]: ...

    def campaign_ids(self, names: Sequence[str]) -> Mapping[str, str]: ...


def find_tasks_by_key(
    client: SalesforceClient, key_field: str, keys: Collection[str], *, keys_per_query: int
) -> dict[str, tuple[str, ...]]:
    """Task ids by idempotency key, deleted Tasks included (a rep's deletion is respected)."""
    found: dict[str, list[str]] = {}
    for chunk in soql.chunked(sorted(set(keys)), keys_per_query):
        for row in client.query_records(soql.tasks_by_keys(key_field, chunk), include_deleted=True):
            found.setdefault(str(row[key_field]), []).append(str(row["Id"]))
    return {k: tuple(v) for k, v in found.items()}


class Writer:
    def __init__(
        self,
        client: SalesforceClient,
        collections: CollectionWriter,
        payload_config: PayloadConfig,
        context: WriteContext,
        *,
        ids_per_query: int,
        keys_per_query: int,
        nurture_status: str,
        responded_status: str,
    ) -> None:
        self._client = client
        self._collections = collections
        self._config = payload_config
        self._context = context
        self._ids_per_query = ids_per_query
        self._keys_per_query = keys_per_query
        self._nurture_status = nurture_status
        self._responded_status = responded_status

    def apply(self, actions: Sequence[Action]) -> list[ActionOutcome]:
        context = self._context
        plan = _Plan()
        found = self._read_before(actions, context)
        self._plan_opportunities(actions, plan, found.opportunities)
        held = held_back(actions, {actions[i].key: o for i, o in plan.fixed.items()})
        for index, action in enumerate(actions):
            if action.key in held:
                plan.fixed[index] = held[action.key]
        rest = [a if i not in plan.fixed else None for i, a in enumerate(actions)]
        self._plan_tasks(rest, plan, context, found.open_tasks)
        self._plan_nurture(rest, plan, found)
        read_back = self._to_read_back(actions, plan)
        written = self._collections.write(
            creates=[r for r, _ in plan.creates],
            updates=[r for r, _ in plan.updates],
            deletes=[i for i, _ in plan.deletes],
            find_existing=self._existing_tasks,
            then_query=[soql.opportunity_stamps(c) for c in read_back],
        )
        results: dict[int, list[RecordResult]] = {}
        _collect(results, plan.creates, written.creates)
        _collect(results, plan.updates, written.updates)
        _collect(results, plan.deletes, written.deletes)
        outcomes = [
            plan.fixed.get(i) or _outcome(action.key, results.get(i, []), i in plan.gone_is_done)
            for i, action in enumerate(actions)
        ]
        answered: dict[str, Mapping[str, Any] | None] = {}
        for chunk, rows in zip(read_back, written.queries, strict=True):
            if rows is not None:
                by_id = {str(row["Id"]): row for row in rows}
                answered.update({deal_id: by_id.get(deal_id) for deal_id in chunk})
        return self._with_stamps(actions, outcomes, results, answered)

    def _to_read_back(self, actions: Sequence[Action], plan: _Plan) -> list[Sequence[str]]:
        """The opportunities this apply is about to change, in query-sized chunks, to be read back in the
        write's own Composite call (after the collections: subrequests run in order). None are read
        without the integration user's id (a stamp is only taken from our own write)."""
        if self._client.user_id is None:
            return []
        closing = {a.deal_id for a in actions if isinstance(a, ChangeStage) and a.close_reason is not None}
        ids = sorted(
            {
                str(record["id"])
                for record, _ in plan.updates
                if record.get("attributes", {}).get("type") == "Opportunity"
            }
            - closing
        )
        return soql.chunked(ids, self._ids_per_query)

    def _with_stamps(
        self,
        actions: Sequence[Action],
        outcomes: list[ActionOutcome],
        results: Mapping[int, Sequence[RecordResult]] | None = None,
        answered: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> list[ActionOutcome]:
        """Opportunity writes' outcomes with the ``LastModifiedDate`` our write gave them.

        sObject Collections answer with ids only, so the written opportunities are read back: in the
        write's own Composite call (``answered``, by opportunity id; valid for the records written by the
        bundled first attempt, not ``retried`` in ``results``), else at once after it (one query per
        ``ids_per_query``, bundled). A stamp is taken only while the integration user is still the last
        writer: a later write by someone else is theirs to report, and the next pull reads the opportunity
        again. Opportunities this write closed as lost are not read back: the mirror drops them, and the
        next pull leaves a closed opportunity it does not hold out.
        """
        closing = {a.deal_id for a in actions if isinstance(a, ChangeStage) and a.close_reason is not None}
        written = {
            a.deal_id
            for a, o in zip(actions, outcomes, strict=True)
            if isinstance(a, ChangeStage | SetDealFields)
            and o.status is OutcomeStatus.APPLIED
            and a.deal_id not in closing
        }
        me = self._client.user_id
        if not written or me is None:
            return outcomes
        results, answered = results or {}, answered or {}
        retried = {
            a.deal_id
            for i, a in enumerate(actions)
            if isinstance(a, ChangeStage | SetDealFields) and any(r.retried for r in results.get(i, ()))
        }
        rows = [row for d in written - retried if d in answered and (row := answered[d]) is not None]
        missing = sorted(d for d in written if d in retried or d not in answered)
        queries = [soql.opportunity_stamps(c) for c in soql.chunked(missing, self._ids_per_query)]
        try:
            rows += [row for found in self._client.query_each(queries) for row in found]
        except RetryLater:  # the writes stand; without their stamps the next pull reads those deals again
            log.info("salesforce_stamps_not_read", opportunities=len(missing))
        stamps = {
            str(row["Id"]): stamp
            for row in rows
            if written_by(row, me) and (stamp := parse_datetime(row.get("LastModifiedDate"))) is not None
        }
        return [
            replace(o, modified_at=stamps[a.deal_id])
            if isinstance(a, ChangeStage | SetDealFields)
            and o.status is OutcomeStatus.APPLIED
            and a.deal_id in stamps
            else o
            for a, o in zip(actions, outcomes, strict=True)
        ]

    def _read_before(self, actions: Sequence[Action], context: WriteContext) -> _Found:
        """Everything the plan reads before writing, in one bundle of queries (5 per Composite call): the
        checked opportunities' stamps and current values, which Tasks to close are still open, and the
        nurture contacts' current campaign memberships."""
        found = _Found()
        checked = [
            a
            for a in actions
            if isinstance(a, (ChangeStage, SetDealFields)) and a.expected_modified_at is not None
        ]
        written = sorted({f for a in checked for f in opportunity_changes(a, self._config)})
        opportunity_ids = sorted({a.deal_id for a in checked})
        queries = [
            soql.opportunity_stamps(c, written) for c in soql.chunked(opportunity_ids, self._ids_per_query)
        ]
        kinds = ["opportunities"] * len(queries)
        close_ids = sorted({a.task_id for a in actions if isinstance(a, CloseTask)})
        task_queries = [soql.open_tasks(c) for c in soql.chunked(close_ids, self._ids_per_query)]
        queries += task_queries
        kinds += ["tasks"] * len(task_queries)
        nurture = [a for a in actions if isinstance(a, (EnrolInNurture, ReactivateFromNurture))]
        if nurture:
            found.campaigns = dict(context.campaign_ids(sorted({a.nurture for a in nurture})))
        wanted: dict[str, set[str]] = {}
        for action in nurture:
            if action.nurture in found.campaigns:
                wanted.setdefault(found.campaigns[action.nurture], set()).update(action.contact_ids)
        member_queries = [
            (campaign, soql.campaign_members(campaign, chunk))
            for campaign, contact_ids in sorted(wanted.items())
            for chunk in soql.chunked(sorted(contact_ids), self._ids_per_query)
        ]
        queries += [q for _, q in member_queries]
        kinds += ["members"] * len(member_queries)
        campaigns = iter(campaign for campaign, _ in member_queries)
        for kind, rows in zip(kinds, self._client.query_each(queries), strict=True):
            if kind == "opportunities":
                found.opportunities.update((str(row["Id"]), row) for row in rows)
            elif kind == "tasks":
                found.open_tasks.update((str(row["Id"]), row.get("Description")) for row in rows)
            else:
                campaign = next(campaigns)
                found.members.update(((campaign, str(row["ContactId"])), row) for row in rows)
        return found

    # -- planning -----------------------------------------------------------------------------------

    def _plan_tasks(
        self,
        actions: Sequence[Action | None],
        plan: _Plan,
        context: WriteContext,
        still_open: Mapping[str, str | None],
    ) -> None:
        update_ids = [a.task_id for a in actions if isinstance(a, UpdateTask) and a.due_at is not None]
        task_zones = context.task_owner_time_zones(update_ids) if update_ids else {}
        for index, action in enumerate(actions):
            if isinstance(action, CreateTask):
                zone = context.owner_time_zone(action.owner_id)
                plan.creates.append((create_task_record(action, zone, self._config), [index]))
            elif isinstance(action, UpdateTask):
                zone = task_zones.get(action.task_id)
                plan.updates.append((update_task_record(action, zone, self._config), [index]))
            elif isinstance(action, CloseTask) and action.task_id not in still_open:
                # closed or deleted by now (by us before, or by a rep): nothing to write
                plan.fixed[index] = ActionOutcome(
                    action.key, OutcomeStatus.ALREADY_APPLIED, (action.task_id,)
                )
            elif isinstance(action, CloseTask) and action.task_key:
                plan.updates.append((close_task_record(action.task_id, self._config, action), [index]))
                plan.gone_is_done.add(index)
            elif isinstance(action, CloseTask):  # somebody's own task (nurture.close_rep_tasks)
                record = close_rep_task_record(
                    action.task_id,
                    action.reason,
                    action.explanation.summary,
                    still_open[action.task_id],
                    self._config,
                )
                plan.updates.append((record, [index]))
                plan.gone_is_done.add(index)

    def _plan_opportunities(
        self, actions: Sequence[Action], plan: _Plan, current: Mapping[str, Mapping[str, Any]]
    ) -> None:
        changes = [(i, a) for i, a in enumerate(actions) if isinstance(a, (ChangeStage, SetDealFields))]
        if not changes:
            return
        merged: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for index, action in changes:
            changed = opportunity_changes(action, self._config)
            if action.expected_modified_at is not None:
                found = current.get(action.deal_id)
                if found is None:
                    plan.fixed[index] = ActionOutcome(
                        action.key, OutcomeStatus.FAILED, message=f"opportunity {action.deal_id} not found"
                    )
                    continue
                stamps = {parse_datetime(found.get(f)) for f in ("LastModifiedDate", "SystemModstamp")}
                if action.expected_modified_at not in stamps:
                    # Changed since it was read: a conflict, unless it already holds what we would write
                    # (our own write whose answer was lost, applied again by the recovery).
                    if all(_holds(found.get(name), value) for name, value in changed.items()):
                        plan.fixed[index] = ActionOutcome(action.key, ALREADY, (action.deal_id,))
                    else:
                        message = f"opportunity {action.deal_id} changed since it was read"
                        plan.fixed[index] = ActionOutcome(action.key, OutcomeStatus.CONFLICT, message=message)
                    continue
            record, indexes = merged.setdefault(
                action.deal_id, ({"attributes": {"type": "Opportunity"}, "id": action.deal_id}, [])
            )
            record.update(changed)
            indexes.append(index)
        plan.updates.extend(merged.values())

    def _plan_nurture(self, actions: Sequence[Action | None], plan: _Plan, found: _Found) -> None:
        nurture = [
            (i, a) for i, a in enumerate(actions) if isinstance(a, (EnrolInNurture, ReactivateFromNurture))
        ]
        if not nurture:
            return
        campaigns, members = found.campaigns, found.members
        planned: set[tuple[str, str]] = set()
        for index, action in nurture:
            campaign_id = campaigns.get(action.nurture)
            if campaign_id is None:
                plan.fixed[index] = ActionOutcome(
                    action.key,
                    OutcomeStatus.FAILED,
                    message=f"campaign {action.nurture!r} not found: run `followup setup salesforce`",
                )
                continue
            wrote = False
            for contact_id in action.contact_ids:
                pair = (campaign_id, contact_id)
                member = members.get(pair)
                if pair in planned:
                    continue
                if isinstance(action, EnrolInNurture) and member is None:
                    record = campaign_member_record(campaign_id, contact_id, self._nurture_status)
                    plan.creates.append((record, [index]))
                elif isinstance(action, ReactivateFromNurture) and member is not None:
                    if action.remove_from_nurture:
                        plan.deletes.append((str(member["Id"]), [index]))
                    elif member.get("Status") != self._responded_status:
                        record = {
                            "attributes": {"type": "CampaignMember"},
                            "id": str(member["Id"]),
                            "Status": self._responded_status,
                        }
                        plan.updates.append((record, [index]))
                    else:
                        continue
                else:
                    continue
                planned.add(pair)
                wrote = True
            plan.gone_is_done.add(index)
            if not wrote:
                plan.fixed[index] = ActionOutcome(action.key, OutcomeStatus.ALREADY_APPLIED)

    def _existing_tasks(self, records: Mapping[int, Mapping[str, Any]]) -> Mapping[int, str]:
        """Which pending Task records already exist, by their idempotency key (before a retry)."""
        key_field = self._config.task_key_field
        keys = {i: str(r[key_field]) for i, r in records.items() if r.get(key_field)}
        if not keys:
            return {}
        found = find_tasks_by_key(self._client, key_field, keys.values(), keys_per_query=self._keys_per_query)
        return {i: found[k][0] for i, k in keys.items() if found.get(k)}


def _collect(
    results: dict[int, list[RecordResult]],
    planned: Sequence[tuple[Any, list[int]]],
    written: Sequence[RecordResult],
) -> None:
    for (_, indexes), result in zip(planned, written, strict=True):
        for index in indexes:
            results.setdefault(index, []).append(result)


def _outcome(key: str, results: Sequence[RecordResult], gone_is_done: bool) -> ActionOutcome:
    """One action's outcome from its records' results (worst wins: failed, retry, applied, already)."""
    ids = tuple(r.record_id for r in results if r.record_id)
    failed: list[str] = []
    retry = False
    written = False
    for result in results:
        codes = set(result.codes)
        if result.status is RecordStatus.WRITTEN:
            written = True
        elif result.status is RecordStatus.RETRY_LATER:
            retry = True
        elif result.status is RecordStatus.FAILED and not (
            codes & ALREADY_CODES or (gone_is_done and codes & GONE_CODES)
        ):
            failed.extend(result.codes or ("UNKNOWN_ERROR",))
    if failed:
        return ActionOutcome(
            key, OutcomeStatus.FAILED, ids, message="salesforce: " + ",".join(sorted(set(failed)))
        )
    if retry:
        return ActionOutcome(key, OutcomeStatus.RETRY_LATER, ids, message="salesforce: gave up retrying")
    if written:
        return ActionOutcome(key, OutcomeStatus.APPLIED, ids)
    return ActionOutcome(key, OutcomeStatus.ALREADY_APPLIED, ids)


def _holds(current: Any, wanted: Any) -> bool:
    """Whether a field's current value (as a query answers it) is the value we would write."""
    if current is None or current == "":
        return wanted is None or wanted == ""
    if wanted is None or str(current) == str(wanted):
        return wanted is not None
    if isinstance(wanted, bool) or isinstance(current, bool):
        return False
    a, b = parse_datetime(current), parse_datetime(wanted)
    if a is not None and b is not None:
        return a == b
    x, y = parse_number(current), parse_number(wanted)
    return x is not None and x == y
