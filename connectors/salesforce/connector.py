"""``SalesforceConnector``: the CrmConnector for Salesforce, and ``build_salesforce_connector``, its one
constructor, which wires the parts (listed in the package docstring); the connector only delegates.

A deal's activities are its own (Task/Event ``WhatId``, EmailMessage ``RelatedToId``) plus the touches
logged on any of its contacts for other opportunities, as on HubSpot
(tests/connectors/test_same_decisions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from connectors import base
from connectors.history import HistoryRead
from connectors.salesforce import soql
from connectors.salesforce.auth import TokenSource
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.composite import CollectionWriter
from connectors.salesforce.directory import OrgDirectory
from connectors.salesforce.history import HistoryReader
from connectors.salesforce.limits import ApiBudget
from connectors.salesforce.mapping import task_view
from connectors.salesforce.options import SalesforceOptions
from connectors.salesforce.payloads import PayloadConfig
from connectors.salesforce.pull import Puller, PullSettings
from connectors.salesforce.session import TimeoutSession
from connectors.salesforce.setup import run_setup
from connectors.salesforce.write import Writer, find_tasks_by_key
from policies.model import Action, Deal


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SalesforceConnector:
    """Pulls opportunities as ``Deal`` aggregates and writes actions back, frugally."""

    def __init__(
        self,
        options: SalesforceOptions,
        client: SalesforceClient,
        org: OrgDirectory,
        puller: Puller,
        writer: Writer,
        *,
        now: Callable[[], datetime],
        extra_deal_fields: Sequence[str] = (),
    ) -> None:
        self.options = options
        self.client = client
        self._org = org
        self._puller = puller
        self._writer = writer
        self._extra = tuple(extra_deal_fields)
        self._now = now

    @property
    def name(self) -> str:
        return "salesforce"

    # -- gather -------------------------------------------------------------------------------------

    def read_directory(self) -> base.Directory:
        """Users (with ``TimeZoneSidKey``) and the org's one stage list, in one Composite call."""
        return self._org.read()

    def pull_changes(
        self, directory: base.Directory, cursor: base.Cursor | None, known: base.KnownDeals | None = None
    ) -> Iterator[base.ChangeBatch]:
        self._org.remember(directory)
        for batch in self._puller.pull(directory, cursor, known):
            self._org.remember_task_owners(batch.deals)
            yield batch

    def read_histories(
        self, deals: Sequence[Deal], directory: base.Directory, *, all_since: datetime | None = None
    ) -> HistoryRead:
        """OpportunityHistory and OpportunityFieldHistory of ``deals`` (``history.py``)."""
        del directory
        reader = HistoryReader(
            self.client,
            opportunity_fields=self.options.opportunity_fields,
            stage_ids=self.options.stage_ids,
            extra_fields=self._extra,
            ids_per_query=self.options.ids_per_query,
            now=self._now(),
        )
        return reader.read(deals, all_since=all_since)

    # -- act ----------------------------------------------------------------------------------------

    def find_applied(self, keys: Collection[str]) -> Mapping[str, tuple[str, ...]]:
        """Task ids by idempotency key, deleted Tasks included (a rep's deletion is respected)."""
        return find_tasks_by_key(
            self.client, self.options.task_key_field, keys, keys_per_query=self.options.write_batch_size
        )

    def apply(
        self, actions: Sequence[Action], *, before_each_call: base.BeforeCall | None = None
    ) -> list[base.ActionOutcome]:
        if not actions:
            return []
        with self.client.guard.while_set(before_each_call):
            return self._writer.apply(actions)

    # -- setup and the demo ---------------------------------------------------------------------------

    def setup(self, needs: base.SetupNeeds, *, dry_run: bool) -> base.SetupReport:
        """``followup setup salesforce``: check the org against ``needs``, create what may be created."""
        return run_setup(self.client, self.options, needs, dry_run=dry_run)

    def followup_tasks(self, limit: int) -> list[base.TaskView]:
        """The last ``limit`` tasks crm-followup created (newest first), as a rep reads them."""
        rows = self.client.query_records(soql.recent_followup_tasks(self.options.task_key_field, limit))
        return [task_view(row) for row in rows]

    # -- housekeeping -------------------------------------------------------------------------------

    def usage(self) -> base.ApiUsage:
        return self.client.budget.usage()

    def close(self) -> None:
        """Close the HTTP session; never log out (that would end every session of the user)."""
        self.client.session.close()


def build_salesforce_connector(
    options: SalesforceOptions,
    *,
    extra_deal_fields: Sequence[str] = (),
    now: Callable[[], datetime],
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    prior_usage: base.PriorUsage = base.no_prior_usage,
) -> SalesforceConnector:
    """A connector for ``options``; no network call happens until it is used.

    ``now`` (wall clock, UTC) is the clock the connector reads: the worker injects its own, so the cursor
    watermarks, the 24-hour budget window and "is this meeting past" agree with the cycle's time. Only the
    JWT assertion is stamped with the machine's clock, because Salesforce checks it against real time.
    ``sleep`` is the retry layer's (tests inject one that does not wait). ``monotonic`` is taken for the
    same signature as ``build_hubspot_connector``; nothing here reads it, as Salesforce has no short
    rate-limit window to pace (its limits are the 24-hour allocation and concurrency, see limits.py).
    ``prior_usage`` gives the calls earlier cycles made on the org (from the state store, whichever worker
    made them): crm-followup's 24-hour share counts them when Salesforce sends no per-app usage.
    """
    del monotonic
    extra = tuple(dict.fromkeys(extra_deal_fields))
    budget = ApiBudget(
        daily_budget_share=options.daily_budget_share,
        max_org_usage=options.max_org_usage,
        recheck=options.budget_recheck,
        clock=now,
        prior=prior_usage,
    )
    session = TimeoutSession(
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        ca_file=options.ca_file,
        observer=budget.observe,
    )
    retry = options.retry
    client = SalesforceClient(
        session=session,
        tokens=TokenSource(options, session, clock=_utc_now),
        budget=budget,
        api_version=options.api_version,
        retry=retry,
        query_batch_size=options.query_batch_size,
        sleep=sleep,
        queries_per_call=options.queries_per_call,
    )
    org = OrgDirectory(client, options, extra_deal_fields=extra)
    shape = soql.OpportunityShape(
        deal_fields=tuple(dict.fromkeys((*options.opportunity_fields.values(), *extra))),
        task_key_field=options.task_key_field,
        task_rule_field=options.task_rule_field,
        activities_per_deal=options.activities_per_deal,
    )
    puller = Puller(
        client,
        shape,
        PullSettings(
            overlap=options.cursor_overlap,
            reconciliation_interval=options.reconciliation_interval,
            ids_per_query=options.ids_per_query,
            deals_per_batch=options.deals_per_batch,
        ),
        clock=now,
        mapping_config=org.mapping_config,
    )
    writer = Writer(
        client,
        CollectionWriter(client, retry=retry, sleep=sleep, batch_size=options.write_batch_size),
        PayloadConfig(
            opportunity_fields=options.opportunity_fields,
            task_key_field=options.task_key_field,
            task_rule_field=options.task_rule_field,
            open_task_status=options.open_task_status,
            closed_task_status=options.closed_task_status,
            default_time_zone=options.default_time_zone,
            stage_names={stage_id: name for name, stage_id in options.stage_ids.items()},
        ),
        org,
        ids_per_query=options.ids_per_query,
        keys_per_query=options.write_batch_size,
        nurture_status=options.nurture_member_status,
        responded_status=options.responded_member_status,
    )
    return SalesforceConnector(options, client, org, puller, writer, extra_deal_fields=extra, now=now)


__all__ = ["SalesforceConnector", "build_salesforce_connector"]
