"""The slow-changing reference data: owners, deal pipelines with their stages, deal property types.

Four calls whatever the portal size: owners are paged 500 at a time (active, then archived ones, which old
deals may still point at), pipelines and the deal property definitions come unpaged (the definitions check
that every mapped property exists and type the values of extra fields a policy reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import Directory
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import owner_from_hubspot, pipeline_from_hubspot
from policies.model import Owner, Pipeline


def read_owners(client: HubSpotClient, time_zones: Mapping[str, str]) -> dict[str, Owner]:
    owners: dict[str, Owner] = {}
    for archived in (False, True):
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "archived": archived}
            if after is not None:
                kwargs["after"] = after
            endpoint = "owners.list_archived" if archived else "owners.list"
            page = client.send(endpoint, "owners", "get_page", **kwargs).body or {}
            for raw in page.get("results") or []:
                owner = owner_from_hubspot({**raw, "archived": archived or raw.get("archived")}, time_zones)
                owners.setdefault(owner.id, owner)
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
    return owners


def read_pipelines(client: HubSpotClient) -> dict[str, Pipeline]:
    page = client.send("pipelines.list", "pipelines", "get_all", "deals").body or {}
    pipelines = (pipeline_from_hubspot(raw) for raw in page.get("results") or [] if not raw.get("archived"))
    return {p.id: p for p in pipelines}


def read_property_types(client: HubSpotClient) -> dict[str, str]:
    """Deal property name -> HubSpot type (string, number, bool, enumeration, date, datetime)."""
    page = client.send("properties.list", "properties", "get_all", "deals").body or {}
    return {str(p["name"]): str(p.get("type") or "string") for p in page.get("results") or []}


def read_directory(client: HubSpotClient, time_zones: Mapping[str, str]) -> Directory:
    return Directory(owners=read_owners(client, time_zones), pipelines=read_pipelines(client))
