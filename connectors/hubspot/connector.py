"""``HubSpotConnector``: the CrmConnector for HubSpot, and ``build_hubspot_connector``, its one
constructor, which wires the parts (listed in the package docstring); the connector only delegates.

The connector keeps one SDK client (built once, retries off), one rate limiter and the knowledge this
process gathered about our own tasks (key -> task id), which ``find_applied`` answers from. For a deal this
process has not pulled, ``apply`` reads the deal's tasks before creating any, so a key is never written
twice even when ``find_applied`` could not know it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors import base
from connectors.errors import FixConfiguration
from connectors.history import HistoryRead
from connectors.hubspot.aggregate import AggregateBuilder
from connectors.hubspot.auth import build_token_source
from connectors.hubspot.client import HubSpotClient, sdk_refresh_call
from connectors.hubspot.directory import read_directory, read_property_types
from connectors.hubspot.fetch import Fetcher
from connectors.hubspot.history import HistoryReader, history_properties
from connectors.hubspot.limits import RateLimiter
from connectors.hubspot.mapping import TASK_VIEW_PROPERTIES, task_view
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.pull import Puller
from connectors.hubspot.setup import run_setup
from connectors.hubspot.write import Writer
from connectors.hubspot.write_tasks import TaskWriter
from policies.model import Action, Deal, DealField


class HubSpotConnector:
    """Reads deals as whole aggregates and writes actions back, in as few API calls as batches allow."""

    def __init__(
        self,
        options: HubSpotOptions,
        client: HubSpotClient,
        fetcher: Fetcher,
        builder: AggregateBuilder,
        writer: Writer,
        *,
        now: Callable[[], datetime],
        extra_deal_fields: tuple[str, ...] = (),
    ) -> None:
        self.options = options
        self.client = client
        self._fetcher = fetcher
        self._builder = builder
        self._writer = writer
        self._extra = extra_deal_fields
        self._now = now
        self._applied: dict[str, tuple[str, ...]] = {}

    @property
    def name(self) -> str:
        return "hubspot"

    def read_directory(self) -> base.Directory:
        """Owners and pipelines, and a check that every deal property the mapping names exists.

        HubSpot leaves a requested property it does not know out of its answers, so a mapping that names a
        deleted (or misspelt) property would read as "never set" on every deal; instead the account stops
        with ``FixConfiguration`` naming the properties (one ``properties.list`` call per cycle).
        """
        directory = read_directory(self.client, self.options.owner_time_zones)
        types = read_property_types(self.client)
        mapped = {self.options.property_for(f): f"hubspot.deal_properties.{f.value}" for f in DealField}
        mapped.update(dict.fromkeys(self._extra, "a field the policy reads"))
        missing = sorted(name for name in mapped if name not in types)
        if missing:
            named = ", ".join(f"{name} ({mapped[name]})" for name in missing)
            raise FixConfiguration(
                f"deal properties missing in the HubSpot portal: {named}; create them "
                "(followup setup hubspot) or map the field to an existing property in the settings"
            )
        self._builder.field_types = types
        return directory

    def pull_changes(
        self, directory: base.Directory, cursor: base.Cursor | None, known: base.KnownDeals | None = None
    ) -> Iterator[base.ChangeBatch]:
        puller = Puller(self._fetcher, self._builder, self.options, extra_fields=self._extra, now=self._now)
        return puller.pull(directory, cursor, known)

    def read_histories(
        self, deals: Sequence[Deal], directory: base.Directory, *, all_since: datetime | None = None
    ) -> HistoryRead:
        """The deals' property histories (``history.py``): 50 deals per call, however they were chosen."""
        del directory, all_since
        properties = history_properties(self.options, self._extra, self._builder.field_types)
        return HistoryReader(self.client, properties).read([d.id for d in deals])

    def find_applied(self, keys: Collection[str]) -> Mapping[str, tuple[str, ...]]:
        """Keys already in HubSpot as far as this process has seen: our tasks (key line) and our writes."""
        found: dict[str, tuple[str, ...]] = {}
        for key in keys:
            task = self._builder.known_tasks.get(key)
            if task is not None:
                found[key] = (task.task_id,)
            elif key in self._applied:
                found[key] = self._applied[key]
        return found

    def apply(
        self, actions: Sequence[Action], *, before_each_call: base.BeforeCall | None = None
    ) -> list[base.ActionOutcome]:
        with self.client.guard.while_set(before_each_call):
            outcomes = self._writer.apply(actions)
        for outcome in outcomes:
            if outcome.status in (base.OutcomeStatus.APPLIED, base.OutcomeStatus.ALREADY_APPLIED):
                self._applied[outcome.key] = outcome.crm_ids
        return outcomes

    def setup(self, needs: base.SetupNeeds, *, dry_run: bool) -> base.SetupReport:
        """``followup setup hubspot``: check the portal against ``needs``, create what is missing."""
        return run_setup(self.client, self.options, needs, dry_run=dry_run)

    def followup_tasks(self, limit: int) -> list[base.TaskView]:
        """The last ``limit`` tasks crm-followup created, as a rep reads them.

        Lists the portal's tasks page by page and keeps ours (the key line): for a demo portal, not for a
        100,000-task one.
        """
        found: list[base.TaskView] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100, "properties": TASK_VIEW_PROPERTIES}
            if after is not None:
                kwargs["after"] = after
            page = self.client.send("tasks.list", "tasks.basic", "get_page", **kwargs).body or {}
            found.extend(v for r in page.get("results") or [] if (v := task_view(r)) is not None)
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return found[-limit:] if limit else []

    def usage(self) -> base.ApiUsage:
        limiter = self.client.limiter
        return base.ApiUsage(
            calls_by_endpoint=dict(sorted(self.client.calls.items())),
            daily_limit=limiter.daily_limit_reported or self.options.limits[1],
            daily_remaining=limiter.daily_remaining,
        )

    def close(self) -> None:
        self.client.close()


def build_hubspot_connector(
    options: HubSpotOptions,
    *,
    extra_deal_fields: Iterable[str] = (),
    now: Callable[[], datetime],
    monotonic: Callable[[], float],
    sleep: Callable[[float], None],
    prior_usage: base.PriorUsage = base.no_prior_usage,
) -> HubSpotConnector:
    """A connector for the portal ``options`` describe; reads secrets now (``FixConfiguration`` if missing).

    The clocks are injected, never read here (worker.py passes the real ones): ``now`` (wall clock, UTC)
    for cursors and the daily budget's reset, ``monotonic`` and ``sleep`` for the rate limiter, the OAuth
    token's expiry and the retry layer. Tests and benchmarks inject a clock that moves when slept on, so
    nothing waits for real. ``prior_usage`` gives the calls earlier cycles made on the portal (from the
    state store, whichever worker made them): the daily share counts them.
    """
    limiter = RateLimiter(options.limiter_settings, clock=monotonic, sleep=sleep, now=now, prior=prior_usage)
    timeout = (options.connect_timeout, options.read_timeout)
    tokens = build_token_source(options, refresh=sdk_refresh_call(options.host, timeout), clock=monotonic)
    client = HubSpotClient(options.host, tokens, limiter, options.retry, timeout=timeout, sleep=sleep)
    extra = tuple(dict.fromkeys(extra_deal_fields))
    fetcher = Fetcher(client, page_size=options.search_page_size, result_cap=options.search_result_cap)
    builder = AggregateBuilder(fetcher, options, extra_fields=extra)
    writer = Writer(client, fetcher, options, TaskWriter(client, fetcher, builder))
    return HubSpotConnector(options, client, fetcher, builder, writer, extra_deal_fields=extra, now=now)
