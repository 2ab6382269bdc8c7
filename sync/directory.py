"""The directory as the engine can use it: owners whose time zone is unknown fall back to the policy's zone.

Salesforce's ``TimeZoneSidKey`` is an IANA id as a rule, but an org can carry one this machine's zoneinfo
does not know (a newer tzdata, a retired id); the engine would fail on every deal of that owner. Such an
owner is kept with no time zone, which the engine reads as "the policy's calendar zone", and a warning
``owner_time_zone_unknown`` names the owner and the value, once per owner and cycle (the directory is read
once per cycle). HubSpot's owner zones come from the settings and are checked when those are loaded.
"""

from __future__ import annotations

import dataclasses

import structlog

from config.time_zones import known_time_zone
from connectors.base import Directory

log = structlog.get_logger(__name__)


def with_known_time_zones(directory: Directory) -> Directory:
    """``directory`` with every owner's unknown time zone replaced by None (the policy's zone), logged."""
    unknown = {
        owner_id: owner
        for owner_id, owner in directory.owners.items()
        if owner.time_zone is not None and not known_time_zone(owner.time_zone)
    }
    if not unknown:
        return directory
    owners = dict(directory.owners)
    for owner_id, owner in sorted(unknown.items()):
        log.warning(
            "owner_time_zone_unknown",
            owner_id=owner_id,
            time_zone=owner.time_zone,
            fallback="the policy's calendar time zone",
        )
        owners[owner_id] = dataclasses.replace(owner, time_zone=None)
    return dataclasses.replace(directory, owners=owners)
