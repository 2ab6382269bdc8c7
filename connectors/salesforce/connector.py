"""``SalesforceConnector``: the ``CrmConnector`` port for Salesforce, wired from its parts.

    options.py   settings          auth.py      tokens            session.py   timeouts, no urllib3 retries
    errors.py    translation       api.py       budget/retry/401  limits.py    Sforce-Limit-Info, budget
    soql.py      queries           mapping.py   records -> Deal   activities.py  Tasks/Events/E-mails
    values.py    scalars           payloads.py  actions -> records
    pull.py      full/incremental  write.py     apply()           composite.py sObject Collections
    setup.py     `followup setup salesforce`

A deal's activities are its own (Task/Event ``WhatId``, EmailMessage ``RelatedToId``) plus the touches
logged on any of its contacts for other opportunities, as on HubSpot
(tests/connectors/test_same_decisions.py).

The connector keeps small caches between calls: the directory (owners' time zones for due dates), campaign
ids by name, and the owners of the auto-tasks it has seen (for ``UpdateTask`` due dates).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import structlog

from connectors.base import ActionOutcome, ApiUsage, ChangeBatch, Cursor, Directory, KnownDeals
from connectors.salesforce import soql
from connectors.salesforce.api import SalesforceApi
from connectors.salesforce.auth import TokenSource
from connectors.salesforce.composite import CollectionWriter
from connectors.salesforce.limits import ApiBudget
from connectors.salesforce.mapping import MappingConfig, owner_from_user, pipeline_from_stages
from connectors.salesforce.options import SalesforceOptions
from connectors.salesforce.payloads import PayloadConfig
from connectors.salesforce.pull import Puller, PullSettings
from connectors.salesforce.session import TimeoutSession
from connectors.salesforce.write import WriteContext, Writer
from policies.model import Action, Owner

log = structlog.get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SalesforceConnector:
    """Pulls opportunities as ``Deal`` aggregates and writes actions back, frugally."""

    def __init__(
        self,
        options: SalesforceOptions,
        *,
        extra_deal_fields: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.options = options
        self._clock = clock = now  # the cycle's clock (see build_salesforce_connector)
        self._extra_fields = tuple(dict.fromkeys(extra_deal_fields))
        self.budget = ApiBudget(
            daily_budget_share=options.daily_budget_share,
            max_org_usage=options.max_org_usage,
            recheck=options.budget_recheck,
            clock=clock,
        )
        self.session = TimeoutSession(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            ca_file=options.ca_file,
            observer=self.budget.observe,
        )
        retry = options.retry.to_settings()
        self.api = SalesforceApi(
            session=self.session,
            # The JWT assertion's exp is checked by Salesforce against its own clock, the real one: it is
            # stamped with the machine's time, not the cycle's (which a test or a replay may set elsewhere).
            tokens=TokenSource(options, self.session, clock=_utc_now),
            budget=self.budget,
            api_version=options.api_version,
            retry=retry,
            query_batch_size=options.query_batch_size,
            sleep=sleep,
            queries_per_call=options.queries_per_call,
        )
        deal_fields = tuple(dict.fromkeys((*options.opportunity_fields.values(), *self._extra_fields)))
        self.shape = soql.OpportunityShape(
            deal_fields=deal_fields,
            task_key_field=options.task_key_field,
            task_rule_field=options.task_rule_field,
            activities_per_deal=options.activities_per_deal,
        )
        self._puller = Puller(
            self.api,
            self.shape,
            PullSettings(
                overlap=options.cursor_overlap,
                reconciliation_interval=options.reconciliation_interval,
                ids_per_query=options.ids_per_query,
                deals_per_batch=options.deals_per_batch,
            ),
            clock=clock,
            mapping_config=self._mapping_config,
        )
        self._writer = Writer(
            self.api,
            CollectionWriter(self.api, retry=retry, sleep=sleep, batch_size=options.write_batch_size),
            PayloadConfig(
                opportunity_fields=options.opportunity_fields,
                task_key_field=options.task_key_field,
                task_rule_field=options.task_rule_field,
                open_task_status=options.open_task_status,
                closed_task_status=options.closed_task_status,
                default_time_zone=options.default_time_zone,
                stage_names={stage_id: name for name, stage_id in options.stage_ids.items()},
            ),
            ids_per_query=options.ids_per_query,
            nurture_status=options.nurture_member_status,
            responded_status=options.responded_member_status,
            find_applied=self.find_applied,
        )
        self._owners: dict[str, Owner] = {}
        self._campaigns: dict[str, str] = {}
        self._task_owners: dict[str, str | None] = {}

    @property
    def name(self) -> str:
        return "salesforce"

    # -- gather -------------------------------------------------------------------------------------

    def read_directory(self) -> Directory:
        """Users (with ``TimeZoneSidKey``) and the org's one stage list, read from OpportunityStage.

        The two queries are independent: one Composite call reads both (``query_each``).
        """
        users, stages = self.api.query_each([soql.users(), soql.opportunity_stages()])
        owners = {}
        for user in users:
            owner = owner_from_user(user)
            owners[owner.id] = owner
        self._owners = owners
        pipeline = pipeline_from_stages(
            stages,
            pipeline_id=self.options.pipeline_id,
            label=self.options.pipeline_label,
            stage_ids=self.options.stage_ids,
        )
        return Directory(owners=dict(owners), pipelines={pipeline.id: pipeline})

    def pull_changes(
        self, directory: Directory, cursor: Cursor | None, known: KnownDeals | None = None
    ) -> Iterator[ChangeBatch]:
        if directory.owners:
            self._owners.update(directory.owners)
        for batch in self._puller.pull(directory, cursor, known):
            for deal in batch.deals:
                for task in deal.auto_tasks:
                    self._task_owners[task.id] = task.owner_id
            yield batch

    def _mapping_config(self, directory: Directory) -> MappingConfig:
        return MappingConfig(
            pipeline_id=self.options.pipeline_id,
            opportunity_fields=self.options.opportunity_fields,
            contact_roles=self.options.contact_roles,
            stage_ids=self.options.stage_ids,
            task_key_field=self.options.task_key_field,
            task_rule_field=self.options.task_rule_field,
            extra_deal_fields=self._extra_fields,
            default_time_zone=self.options.default_time_zone,
            owners=directory.owners or self._owners,
        )

    # -- act ----------------------------------------------------------------------------------------

    def find_applied(self, keys: Collection[str]) -> Mapping[str, tuple[str, ...]]:
        """Task ids by idempotency key, deleted Tasks included (a rep's deletion is respected)."""
        found: dict[str, list[str]] = {}
        key_field = self.options.task_key_field
        for chunk in soql.chunked(sorted(set(keys)), self.options.write_batch_size):
            query = soql.tasks_by_keys(key_field, chunk)
            for row in self.api.query_records(query, include_deleted=True):
                found.setdefault(str(row[key_field]), []).append(str(row["Id"]))
        return {k: tuple(v) for k, v in found.items()}

    def apply(self, actions: Sequence[Action]) -> list[ActionOutcome]:
        if not actions:
            return []
        context = WriteContext(
            owner_time_zone=self._owner_time_zone,
            task_owner_time_zones=self._task_owner_time_zones,
            campaign_ids=self._campaign_ids,
        )
        return self._writer.apply(actions, context)

    def _load_owners(self, owner_ids: Collection[str]) -> None:
        missing = sorted({o for o in owner_ids if o and o not in self._owners})
        for chunk in soql.chunked(missing, self.options.ids_per_query):
            for user in self.api.query_records(soql.users(chunk)):
                owner = owner_from_user(user)
                self._owners[owner.id] = owner

    def _owner_time_zone(self, owner_id: str | None) -> str | None:
        if not owner_id:
            return None
        self._load_owners([owner_id])
        owner = self._owners.get(owner_id)
        return owner.time_zone if owner else None

    def _task_owner_time_zones(self, task_ids: Sequence[str]) -> Mapping[str, str | None]:
        unknown = [t for t in task_ids if t not in self._task_owners]
        for chunk in soql.chunked(unknown, self.options.ids_per_query):
            query = f"SELECT Id, OwnerId FROM Task WHERE Id IN {soql.in_list(chunk)}"  # noqa: S608
            for row in self.api.query_records(query):
                self._task_owners[str(row["Id"])] = row.get("OwnerId")
        self._load_owners([o for t in task_ids if (o := self._task_owners.get(t))])
        return {t: self._owner_time_zone(self._task_owners.get(t)) for t in task_ids}

    def _campaign_ids(self, names: Sequence[str]) -> Mapping[str, str]:
        missing = [n for n in names if n not in self._campaigns]
        if missing:
            for row in self.api.query_records(soql.campaigns_named(missing)):
                self._campaigns[str(row["Name"])] = str(row["Id"])
        return {n: self._campaigns[n] for n in names if n in self._campaigns}

    # -- housekeeping -------------------------------------------------------------------------------

    def usage(self) -> ApiUsage:
        return self.budget.usage()

    def close(self) -> None:
        """Close the HTTP session; never log out (that would end every session of the user)."""
        self.session.close()


def build_salesforce_connector(
    options: SalesforceOptions,
    *,
    extra_deal_fields: Sequence[str] = (),
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utc_now,
) -> SalesforceConnector:
    """A connector for ``options``; no network call happens until it is used.

    ``now`` (wall clock, UTC) is the clock the connector reads: the worker injects its own, so the cursor
    watermarks, the 24-hour budget window and "is this meeting past" agree with the cycle's time (as the
    HubSpot connector's ``now``). Only the JWT assertion is stamped with the machine's clock, because
    Salesforce checks it against real time.
    """
    return SalesforceConnector(options, extra_deal_fields=extra_deal_fields, sleep=sleep, now=now)


__all__ = ["SalesforceConnector", "build_salesforce_connector"]
