"""``followup setup salesforce``: check an org against the policy, create what may be created, say the rest.

What crm-followup needs (docs/crm-fields.md):

* custom fields: ``Activity.Followup_Key__c`` (Text 40, External ID: indexed, queryable by key) and
  ``Activity.Followup_Rule__c`` on Tasks; the mapped ``Opportunity`` fields. Created through the Metadata
  API (simple-salesforce's ``mdapi``, zeep), 10 per call, then made visible with a permission set
  ``CRM_Followup`` (field-level security: a new field is invisible to the integration user until granted)
  assigned to the integration user when its username is known.
* the policy's nurture campaigns, with the member statuses ``Nurture`` (default) and ``Responded``
  (HasResponded), created through REST.
* the stages the policy moves deals to, as active OpportunityStage values (never created here: the stage
  picklist is org-wide sales process configuration, a human decides), and the Task statuses the
  connector writes.

A field missing from ``describe`` is either absent or hidden by field-level security; the report says
both. ``dry_run`` reads only. The Metadata API call goes through the connector's HTTP session (its CA
bundle and timeouts) rather than zeep's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from simple_salesforce.api import Salesforce

from connectors.base import SetupNeeds, SetupReport
from connectors.errors import CrmError
from connectors.salesforce import soql
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.options import JwtBearerAuth, PasswordAuth, SalesforceOptions
from policies.model import DealField

log = structlog.get_logger(__name__)

PERMISSION_SET = "CRM_Followup"
METADATA_BATCH = 10  # createMetadata takes at most 10 components of one type


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A custom field crm-followup needs: where, what type, and its Metadata API attributes."""

    object_name: str  # "Opportunity" or "Activity" (Task and Event share Activity's custom fields)
    name: str
    type: str  # Metadata API FieldType: Text, Date, DateTime, Number, Picklist
    label: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    values: tuple[str, ...] = ()
    external_id: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.object_name}.{self.name}"

    @property
    def describe_object(self) -> str:
        return "Task" if self.object_name == "Activity" else self.object_name


_DEAL_FIELD_TYPES: Mapping[DealField, tuple[str, dict[str, Any]]] = {
    DealField.NEXT_STEP_WHY: ("Text", {"length": 255}),
    DealField.NEXT_STEP_DATE: ("Date", {}),
    DealField.AGREED_INTERVAL_DAYS: ("Number", {"precision": 4, "scale": 0}),
    DealField.AGREED_CHANNEL: ("Picklist", {"values": ("meeting", "call", "email")}),
    DealField.READINESS: ("Picklist", {"values": ("ready", "not_now", "unknown")}),
    DealField.QUALIFICATION_SCORE: ("Number", {"precision": 5, "scale": 2}),
    DealField.FOLLOWUP_STATE: ("Picklist", {"values": ("active", "nurture", "stopped")}),
    DealField.FOLLOWUP_STATE_SINCE: ("DateTime", {}),
    DealField.FOLLOWUP_REASON: ("Text", {"length": 255}),
    DealField.CLOSE_REASON: ("Text", {"length": 255}),
}


def field_specs(options: SalesforceOptions) -> list[FieldSpec]:
    """Every custom field the options name: the Task key fields and the mapped ``__c`` Opportunity fields."""
    specs = [
        FieldSpec("Activity", options.task_key_field, "Text", "Follow-up Key", length=40, external_id=True),
        FieldSpec("Activity", options.task_rule_field, "Text", "Follow-up Rule", length=255),
    ]
    for deal_field, (type_name, extra) in _DEAL_FIELD_TYPES.items():
        name = options.field_for(deal_field)
        if name.endswith("__c"):
            label = "Follow-up " + deal_field.value.replace("_", " ")
            specs.append(FieldSpec("Opportunity", name, type_name, label, **extra))
    return specs


@dataclass(frozen=True, slots=True)
class OrgNeeds:
    """``SetupNeeds`` in the org's terms: the policy's stages as StageNames of the one pipeline."""

    stages: frozenset[str]  # StageName values the policy moves deals to
    nurture_names: frozenset[str]
    deal_fields: frozenset[str]  # extra Opportunity fields the policy reads
    foreign_pipelines: frozenset[str] = frozenset()  # pipeline ids that do not exist in Salesforce


def org_needs(options: SalesforceOptions, needs: SetupNeeds) -> OrgNeeds:
    names = {stage_id: name for name, stage_id in options.stage_ids.items()}
    return OrgNeeds(
        stages=frozenset(names.get(s, s) for p, s in needs.stages if p == options.pipeline_id),
        nurture_names=needs.nurture_names,
        deal_fields=needs.deal_fields,
        foreign_pipelines=frozenset(p for p, _ in needs.stages if p != options.pipeline_id),
    )


def metadata_field(md: Any, spec: FieldSpec) -> Any:
    """The zeep ``CustomField`` for a spec (built locally from the bundled WSDL; no call)."""
    attributes: dict[str, Any] = {
        "fullName": spec.full_name,
        "label": spec.label,
        "type": md.FieldType(spec.type),
    }
    if spec.length is not None:
        attributes["length"] = spec.length
    if spec.precision is not None:
        attributes["precision"], attributes["scale"] = spec.precision, spec.scale or 0
    if spec.external_id:
        attributes["externalId"] = True
    if spec.values:
        values = [md.CustomValue(fullName=v, label=v, default=False) for v in spec.values]
        definition = md.ValueSetValuesDefinition(sorted=False, value=values)
        attributes["valueSet"] = md.ValueSet(restricted=True, valueSetDefinition=definition)
    return md.CustomField(**attributes)


class OrgSetup:
    """Runs the checks and creations of ``followup setup salesforce`` for one org."""

    def __init__(self, client: SalesforceClient, options: SalesforceOptions, *, dry_run: bool) -> None:
        self._client = client
        self._options = options
        self._dry_run = dry_run
        self.report = SetupReport()

    def run(self, needs: OrgNeeds) -> SetupReport:
        self._check_fields(needs)
        self._check_stages(needs)
        self._check_task_statuses()
        for name in sorted(needs.nurture_names):
            self._ensure_campaign(name)
        return self.report

    # -- fields -------------------------------------------------------------------------------------

    def _visible_fields(self, object_name: str) -> dict[str, Mapping[str, Any]]:
        described = self._client.call("describe", lambda sf: getattr(sf, object_name).describe())
        return {str(f["name"]): f for f in described.get("fields", [])}

    def _check_fields(self, needs: OrgNeeds) -> None:
        visible = {name: self._visible_fields(name) for name in ("Opportunity", "Task")}
        missing: list[FieldSpec] = []
        for spec in field_specs(self._options):
            found = visible[spec.describe_object].get(spec.name)
            if found is None:
                missing.append(spec)
            elif spec.external_id and not found.get("externalId"):
                self.report.warnings.append(
                    f"{spec.full_name} exists but is not an External ID: key look-ups are not indexed"
                )
            else:
                self.report.ok.append(f"field {spec.full_name}")
        for name in sorted(needs.deal_fields):
            if name in visible["Opportunity"]:
                self.report.ok.append(f"field Opportunity.{name} (read by the policy)")
            else:
                self.report.problems.append(
                    f"the policy reads Opportunity.{name}, which is missing or hidden from the integration "
                    "user: create it, or grant read access (field-level security)"
                )
        if missing:
            self._create_fields(missing)

    def _create_fields(self, specs: list[FieldSpec]) -> None:
        names = ", ".join(f"{s.full_name} ({s.type})" for s in specs)
        if self._dry_run:
            self.report.created.append(
                f"would create fields {names} and grant them via permission set {PERMISSION_SET}"
            )
            return

        def create(sf: Salesforce) -> None:
            md = sf.mdapi
            transport = getattr(getattr(md, "_client", None), "transport", None)
            if transport is not None:  # use our session: CA bundle, timeouts (zeep has its own otherwise)
                transport.session = self._client.session
            for start in range(0, len(specs), METADATA_BATCH):
                batch = specs[start : start + METADATA_BATCH]
                md.CustomField.create([metadata_field(md, s) for s in batch])
            permissions = [
                md.PermissionSetFieldPermissions(
                    field=s.full_name.replace("Activity.", "Task."), editable=True, readable=True
                )
                for s in specs
            ]
            md.PermissionSet.upsert(
                [
                    md.PermissionSet(
                        fullName=PERMISSION_SET, label="crm-followup", fieldPermissions=permissions
                    )
                ]
            )

        try:  # through the client door (budget, translation), once: creating metadata is not retried blindly
            self._client.call("metadata", create, retry=False)
        except Exception as exc:  # zeep/SOAP faults carry no personal data but may be long: name the class
            error = str(exc) if isinstance(exc, CrmError) else type(exc).__name__
            self.report.problems.append(
                f"could not create fields {names} through the Metadata API ({error}): create them in Setup "
                "(Object Manager) with the types shown, the key field as External ID, then grant the "
                "integration user read and edit access (field-level security)"
            )
            return
        self.report.created.append(f"fields {names}; permission set {PERMISSION_SET} with read/edit access")
        self._assign_permission_set()

    def _assign_permission_set(self) -> None:
        auth = self._options.auth
        username = auth.username if isinstance(auth, (JwtBearerAuth, PasswordAuth)) else None
        if username is None:
            self.report.warnings.append(
                f"assign permission set {PERMISSION_SET} to the integration user (Setup > Users)"
            )
            return
        query = self._client.query_records
        user = list(query(f"SELECT Id FROM User WHERE Username = {soql.quote(username)}"))  # noqa: S608
        pset = list(query(f"SELECT Id FROM PermissionSet WHERE Name = '{PERMISSION_SET}'"))  # noqa: S608
        if not user or not pset:
            self.report.warnings.append(
                f"assign permission set {PERMISSION_SET} to {username} (Setup > Users)"
            )
            return
        try:
            self._client.restful(
                "sobjects/PermissionSetAssignment/",
                method="POST",
                json={"AssigneeId": user[0]["Id"], "PermissionSetId": pset[0]["Id"]},
            )
        except CrmError as exc:
            if "DUPLICATE_VALUE" not in str(exc):
                self.report.warnings.append(f"assign permission set {PERMISSION_SET} to {username}: {exc}")
                return
        self.report.created.append(f"permission set {PERMISSION_SET} assigned to {username}")

    # -- stages and statuses ------------------------------------------------------------------------

    def _check_stages(self, needs: OrgNeeds) -> None:
        rows = list(self._client.query_records(soql.opportunity_stages()))
        active = {str(r.get("ApiName") or r.get("MasterLabel")) for r in rows if r.get("IsActive", True)}
        for pipeline in sorted(needs.foreign_pipelines):
            # One policy may serve several CRMs: rules scoped to another CRM's pipeline simply never apply.
            self.report.warnings.append(
                f"the policy names pipeline {pipeline!r}; in Salesforce every stage is in pipeline "
                f"{self._options.pipeline_id!r} (settings: pipeline_id), so those rules never apply here"
            )
        for stage in sorted(needs.stages):
            if stage in active:
                self.report.ok.append(f"stage {stage!r}")
            else:
                self.report.problems.append(
                    f"stage {stage!r} is not an active Opportunity stage: add it to the Stage picklist "
                    "(Setup > Object Manager > Opportunity > Fields > Stage) or fix the policy"
                )

    def _check_task_statuses(self) -> None:
        try:
            rows = list(self._client.query_records("SELECT ApiName, MasterLabel, IsClosed FROM TaskStatus"))
        except CrmError as exc:
            self.report.warnings.append(f"could not read TaskStatus ({exc}): task statuses not checked")
            return
        statuses = {str(r.get("ApiName") or r.get("MasterLabel")): bool(r.get("IsClosed")) for r in rows}
        if not rows:
            return
        open_status, closed_status = self._options.open_task_status, self._options.closed_task_status
        if statuses.get(open_status, True):
            self.report.problems.append(
                f"Task status {open_status!r} is missing or closed (open_task_status)"
            )
        if not statuses.get(closed_status, False):
            self.report.problems.append(
                f"Task status {closed_status!r} is missing or not closed (closed_task_status)"
            )

    # -- campaigns ----------------------------------------------------------------------------------

    def _ensure_campaign(self, name: str) -> None:
        rows = list(self._client.query_records(soql.campaigns_named([name])))
        if not rows:
            if self._dry_run:
                self.report.created.append(
                    f"would create campaign {name!r} with member statuses Nurture, Responded"
                )
                return
            created = self._client.restful(
                "sobjects/Campaign/",
                method="POST",
                json={"Name": name, "IsActive": True, "Status": "In Progress"},
            )
            campaign_id = str(created["id"])
            self.report.created.append(f"campaign {name!r}")
        else:
            campaign_id = str(rows[0]["Id"])
            self.report.ok.append(f"campaign {name!r}")
        statuses = {
            str(r["Label"]): r
            for r in self._client.query_records(soql.campaign_member_statuses([campaign_id]))
        }
        wanted = ((self._options.nurture_member_status, False), (self._options.responded_member_status, True))
        for label, responded in wanted:
            current = statuses.get(label)
            if current is not None:
                if bool(current.get("HasResponded")) != responded:
                    self.report.problems.append(
                        f"campaign {name!r}: member status {label!r} should have HasResponded={responded}"
                    )
                continue
            if self._dry_run:
                self.report.created.append(f"would add member status {label!r} to campaign {name!r}")
                continue
            record = {
                "CampaignId": campaign_id,
                "Label": label,
                "HasResponded": responded,
                "IsDefault": not responded,
            }
            self._client.restful("sobjects/CampaignMemberStatus/", method="POST", json=record)
            self.report.created.append(f"member status {label!r} on campaign {name!r}")


def run_setup(
    client: SalesforceClient, options: SalesforceOptions, needs: SetupNeeds, *, dry_run: bool
) -> SetupReport:
    """Check the org and, unless ``dry_run``, create what crm-followup may create."""
    return OrgSetup(client, options, dry_run=dry_run).run(org_needs(options, needs))
