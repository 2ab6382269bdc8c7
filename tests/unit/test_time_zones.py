"""config.time_zones: the one time zone check of settings, policy files, snapshots and owners."""

from __future__ import annotations

import pytest

from config.time_zones import check_time_zone, known_time_zone
from policies.policy_file import CalendarSettings


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("Europe/Berlin", True),
        ("UTC", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Mars/Base", False),
        ("", False),  # zoneinfo: ValueError, not ZoneInfoNotFoundError
        ("../etc/passwd", False),  # a path, not a key: ValueError
        ("europe/berlin ", False),
    ],
)
def test_known_time_zone(name: str, known: bool) -> None:
    assert known_time_zone(name) is known


def test_check_time_zone_returns_a_known_name_and_says_what_to_write_for_another() -> None:
    assert check_time_zone("Asia/Tokyo") == "Asia/Tokyo"
    with pytest.raises(
        ValueError, match=r"unknown time zone 'Mars/Base': use an IANA name such as Europe/Berlin"
    ):
        check_time_zone("Mars/Base")


def test_a_policy_calendar_refuses_an_unknown_zone_through_the_shared_check() -> None:
    with pytest.raises(ValueError, match="use an IANA name such as Europe/Berlin"):
        CalendarSettings(time_zone="Atlantis/Capital")
