"""The slow-changing reference data, and what the connector remembers of the org between calls.

``read_directory`` reads the users (with ``TimeZoneSidKey``) and the org's one stage list
(``OpportunityStage``) in one Composite call. ``OrgDirectory`` keeps what later calls need and would
otherwise read again: owners' time zones (a task's due date is in its owner's zone), the owners of the
auto-tasks pulled (for ``UpdateTask`` due dates) and campaign ids by name (nurture). It answers the
writer's questions (``write.WriteContext``), reading only what it does not know yet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from connectors.base import Directory
from connectors.salesforce import soql
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.mapping import MappingConfig, owner_from_user, pipeline_from_stages
from connectors.salesforce.options import SalesforceOptions
from policies.model import Deal, Owner


class OrgDirectory:
    """Owners, task owners and campaigns as far as this connector has read them."""

    def __init__(
        self, client: SalesforceClient, options: SalesforceOptions, *, extra_deal_fields: Sequence[str] = ()
    ) -> None:
        self._client = client
        self._options = options
        self._extra = tuple(extra_deal_fields)
        self._owners: dict[str, Owner] = {}
        self._campaigns: dict[str, str] = {}
        self._task_owners: dict[str, str | None] = {}

    def read(self) -> Directory:
        """Users and the stage list; the two queries are independent, so one Composite call reads both."""
        users, stages = self._client.query_each([soql.users(), soql.opportunity_stages()])
        owners = {owner.id: owner for owner in map(owner_from_user, users)}
        self._owners = dict(owners)
        options = self._options
        pipeline = pipeline_from_stages(
            stages, pipeline_id=options.pipeline_id, label=options.pipeline_label, stage_ids=options.stage_ids
        )
        return Directory(owners=owners, pipelines={pipeline.id: pipeline})

    def remember(self, directory: Directory) -> None:
        """Take the owners of the directory a pull is given (the worker's, which may add time zones)."""
        self._owners.update(directory.owners)

    def remember_task_owners(self, deals: Iterable[Deal]) -> None:
        for deal in deals:
            for task in deal.auto_tasks:
                self._task_owners[task.id] = task.owner_id

    def mapping_config(self, directory: Directory) -> MappingConfig:
        options = self._options
        return MappingConfig(
            pipeline_id=options.pipeline_id,
            opportunity_fields=options.opportunity_fields,
            contact_roles=options.contact_roles,
            stage_ids=options.stage_ids,
            task_key_field=options.task_key_field,
            task_rule_field=options.task_rule_field,
            extra_deal_fields=self._extra,
            default_time_zone=options.default_time_zone,
            owners=directory.owners or self._owners,
        )

    # -- what the writer asks (write.WriteContext) ----------------------------------------------------

    def owner_time_zone(self, owner_id: str | None) -> str | None:
        if not owner_id:
            return None
        self._load_owners([owner_id])
        owner = self._owners.get(owner_id)
        return owner.time_zone if owner else None

    def task_owner_time_zones(self, task_ids: Sequence[str]) -> Mapping[str, str | None]:
        unknown = [t for t in task_ids if t not in self._task_owners]
        for chunk in soql.chunked(unknown, self._options.ids_per_query):
            query = f"SELECT Id, OwnerId FROM Task WHERE Id IN {soql.in_list(chunk)}"  # noqa: S608
            for row in self._client.query_records(query):
                self._task_owners[str(row["Id"])] = row.get("OwnerId")
        self._load_owners([o for t in task_ids if (o := self._task_owners.get(t))])
        return {t: self.owner_time_zone(self._task_owners.get(t)) for t in task_ids}

    def campaign_ids(self, names: Sequence[str]) -> Mapping[str, str]:
        missing = [n for n in names if n not in self._campaigns]
        if missing:
            for row in self._client.query_records(soql.campaigns_named(missing)):
                self._campaigns[str(row["Name"])] = str(row["Id"])
        return {n: self._campaigns[n] for n in names if n in self._campaigns}

    def _load_owners(self, owner_ids: Collection[str]) -> None:
        missing = sorted({o for o in owner_ids if o and o not in self._owners})
        for chunk in soql.chunked(missing, self._options.ids_per_query):
            for user in self._client.query_records(soql.users(chunk)):
                owner = owner_from_user(user)
                self._owners[owner.id] = owner
