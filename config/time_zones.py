"""IANA time zone names: the one check for settings, policy files, snapshots and the CRMs' owners."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def known_time_zone(name: str) -> bool:
    """Whether zoneinfo has ``name`` (an IANA id such as ``Europe/Berlin``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not a valid key ("../x", "")
        return False
    return True


def unknown_time_zone(name: str) -> str:
    """What to tell the person who wrote ``name`` where a time zone belongs."""
    return f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"


def check_time_zone(name: str) -> str:
    """``name`` if it is a known time zone, else ``ValueError`` (for pydantic field validators)."""
    if not known_time_zone(name):
        raise ValueError(unknown_time_zone(name))
    return name
