"""What ``followup setup hubspot`` checks and creates: the portal side of the policies' requirements.

Checks (each failure is one line saying exactly what is wrong and what to do):

* scopes: one cheap read per API the worker uses; a 403 names the missing scope when HubSpot says it;
* the deal properties the settings map canonical fields to, and the policy's extra fields, exist;
* every (pipeline, stage) the policies move deals to exists in the deal pipelines;
* the contact role association labels exist (reported, not created: custom labels depend on the tier);
* every nurture list exists and is a MANUAL contact list.

Creates, unless ``dry_run``: the ``crm_followup`` deal property group, the missing custom deal properties
of docs/crm-fields.md (never a built-in one), and the missing nurture lists. Running it twice creates
nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import SetupNeeds, SetupReport
from connectors.errors import FixConfiguration
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.directory import read_pipelines
from connectors.hubspot.errors import HubSpotRejected
from connectors.hubspot.lists import find_list, manual_list_request
from connectors.hubspot.options import HubSpotOptions
from policies.model import DealField

GROUP = "crm_followup"
GROUP_LABEL = "crm-followup"


def _enum(*values: str) -> dict[str, Any]:
    options = [
        {"label": v.replace("_", " ").capitalize(), "value": v, "displayOrder": i}
        for i, v in enumerate(values)
    ]
    return {"type": "enumeration", "fieldType": "select", "options": options}


# Canonical field -> (label, definition); built-ins (hs_next_step, closed_lost_reason) are not created.
CUSTOM_PROPERTIES: Mapping[DealField, tuple[str, dict[str, Any]]] = {
    DealField.NEXT_STEP_WHY: ("Next step: why", {"type": "string", "fieldType": "textarea"}),
    DealField.NEXT_STEP_DATE: ("Next step: when", {"type": "date", "fieldType": "date"}),
    DealField.AGREED_INTERVAL_DAYS: (
        "Agreed follow-up interval (days)",
        {"type": "number", "fieldType": "number"},
    ),
    DealField.AGREED_CHANNEL: ("Agreed follow-up channel", _enum("meeting", "call", "email")),
    DealField.READINESS: ("Readiness to buy", _enum("ready", "not_now", "unknown")),
    DealField.QUALIFICATION_SCORE: ("Qualification score", {"type": "number", "fieldType": "number"}),
    DealField.FOLLOWUP_STATE: ("Follow-up state", _enum("active", "nurture", "stopped")),
    DealField.FOLLOWUP_STATE_SINCE: ("Follow-up state since", {"type": "datetime", "fieldType": "date"}),
    DealField.FOLLOWUP_REASON: ("Follow-up reason", {"type": "string", "fieldType": "textarea"}),
}


@dataclass(slots=True)
class PortalReport(SetupReport):
    """The report of one setup run, knowing whether it may create anything."""

    dry_run: bool = False


# Scope probes: (endpoint name, API, method, args, kwargs, scope the call needs).
_PROBES: tuple[tuple[str, str, str, tuple[Any, ...], dict[str, Any], str], ...] = (
    ("owners.list", "owners", "get_page", (), {"limit": 1}, "crm.objects.owners.read"),
    ("deals.list", "deals.basic", "get_page", (), {"limit": 1}, "crm.objects.deals.read"),
    (
        "contacts.search",
        "contacts.search",
        "do_search",
        (),
        {"public_object_search_request": {"limit": 1}},
        "crm.objects.contacts.read",
    ),
    ("lists.search", "lists", "do_search", (), {"list_search_request": {"count": 1}}, "crm.lists.read"),
    ("properties.groups", "property_groups", "get_all", ("deals",), {}, "crm.schemas.deals.read"),
)


def check_scopes(client: HubSpotClient, report: PortalReport) -> bool:
    for endpoint, api, method, args, kwargs, scope in _PROBES:
        try:
            client.send(
                endpoint, api, method, *args, search=endpoint.endswith("search") and api != "lists", **kwargs
            )
        except FixConfiguration as exc:
            report.problems.append(
                f"{exc} - grant the app the scope {scope} (and its write scope where needed)"
            )
    if not report.problems:
        report.ok.append("scopes: owners, deals, contacts, lists and deal properties are readable")
    return not report.problems


def run_setup(
    client: HubSpotClient, options: HubSpotOptions, needs: SetupNeeds, *, dry_run: bool
) -> SetupReport:
    """Check the portal against ``needs`` and create what is missing (nothing when ``dry_run``)."""
    report = PortalReport(dry_run=dry_run)
    if not check_scopes(client, report):
        return report
    _properties(client, options, needs, report)
    _stages(client, needs, report)
    _labels(client, options, report)
    _lists(client, needs, report)
    return report


def _properties(
    client: HubSpotClient, options: HubSpotOptions, needs: SetupNeeds, report: PortalReport
) -> None:
    existing = {
        str(p["name"]): p
        for p in (client.send("properties.list", "properties", "get_all", "deals").body or {}).get("results")
        or []
    }
    groups = {
        str(g["name"])
        for g in (client.send("properties.groups", "property_groups", "get_all", "deals").body or {}).get(
            "results"
        )
        or []
    }
    missing = [
        (f, options.property_for(f)) for f in CUSTOM_PROPERTIES if options.property_for(f) not in existing
    ]
    for builtin in (DealField.NEXT_STEP, DealField.CLOSE_REASON):
        name = options.property_for(builtin)
        if name not in existing:
            report.problems.append(
                f"deal property {name} ({builtin.value}) does not exist; fix deal_properties in the settings"
            )
    for name in sorted(needs.deal_fields):
        if name not in existing:
            report.problems.append(
                f"deal property {name}, read by the policy, does not exist; "
                "create it in HubSpot or fix the policy"
            )
    if missing and GROUP not in groups:
        _create(
            client,
            report,
            f"deal property group {GROUP}",
            "property_groups.create",
            "property_groups",
            "create",
            "deals",
            property_group_create={"name": GROUP, "label": GROUP_LABEL, "displayOrder": -1},
        )
    for field_name, name in missing:
        label, definition = CUSTOM_PROPERTIES[field_name]
        body = {"name": name, "label": label, "groupName": GROUP, **definition}
        _create(
            client,
            report,
            f"deal property {name}",
            "properties.create",
            "properties",
            "create",
            "deals",
            property_create=body,
        )
    if not missing:
        report.ok.append(f"deal properties: all {len(CUSTOM_PROPERTIES)} custom properties exist")


def _create(
    client: HubSpotClient,
    report: PortalReport,
    what: str,
    endpoint: str,
    api: str,
    method: str,
    *args: Any,
    **kwargs: Any,
) -> None:
    if report.dry_run:
        report.created.append(what)  # the printer says "plan" in a dry run
        return
    try:
        client.send_once(endpoint, api, method, *args, **kwargs)
    except HubSpotRejected as exc:
        if exc.status != 409:  # 409: somebody created it meanwhile, which is what we wanted
            report.problems.append(f"could not create {what}: HTTP {exc.status} {exc.category}")
            return
    report.created.append(what)


def _stages(client: HubSpotClient, needs: SetupNeeds, report: PortalReport) -> None:
    pipelines = read_pipelines(client)
    bad = 0
    for pipeline_id, stage_id in sorted(needs.stages):
        pipeline = pipelines.get(pipeline_id)
        if pipeline is None:
            known = ", ".join(sorted(pipelines)) or "none"
            report.problems.append(
                f"policy names deal pipeline {pipeline_id!r}, which does not exist (pipelines: {known})"
            )
            bad += 1
        elif pipeline.stage(stage_id) is None:
            known = ", ".join(s.id for s in pipeline.stages)
            report.problems.append(
                f"policy names stage {stage_id!r} in pipeline {pipeline_id!r}, "
                f"which has no such stage (stages: {known})"
            )
            bad += 1
    if not bad:
        report.ok.append(f"stages: all {len(needs.stages)} stages the policy moves deals to exist")


def _labels(client: HubSpotClient, options: HubSpotOptions, report: PortalReport) -> None:
    body = (
        client.send("association_labels.list", "association_labels", "get_all", "deals", "contacts").body
        or {}
    )
    labels = {str(r.get("label")).casefold() for r in body.get("results") or [] if r.get("label")}
    missing = sorted(label for label in options.role_labels if label.casefold() not in labels)
    if missing:
        report.warnings.append(
            "deal-contact association labels missing (contact roles will not be seen): " + ", ".join(missing)
        )
    else:
        report.ok.append(f"contact role labels: all {len(options.role_labels)} exist")


def _lists(client: HubSpotClient, needs: SetupNeeds, report: PortalReport) -> None:
    for name in sorted(needs.nurture_names):
        found = find_list(client, name)
        if found is None:
            what = f"MANUAL contact list {name!r}"
            request = manual_list_request(name)
            _create(client, report, what, "lists.create", "lists", "create", list_create_request=request)
        elif found.get("processingType") != "MANUAL":
            report.problems.append(
                f"list {name!r} is {found.get('processingType')}, not MANUAL: crm-followup cannot add "
                "members; use another list name in the policy"
            )
        else:
            report.ok.append(f"nurture list {name!r} exists (id {found.get('listId')})")
