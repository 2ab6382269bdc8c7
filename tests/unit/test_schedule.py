"""Schedules become real APScheduler triggers: both forms, jitter on both, bad expressions located at load.

These call APScheduler itself (no fakes): they are what keeps ``typings/apscheduler`` honest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.errors import ConfigError
from config.settings import Schedule
from worker import build_trigger, validate_settings

NOW = datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC)  # a Monday
POLICY = Path(__file__).resolve().parents[2] / "config" / "policies"


def test_an_interval_with_jitter_fires_within_the_jitter_after_the_interval() -> None:
    """``every`` is an IntervalTrigger in UTC; jitter delays each run by at most jitter_seconds."""
    trigger = build_trigger(Schedule(every=timedelta(minutes=15), jitter_seconds=30), NOW)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=15)
    fire = trigger.get_next_fire_time(NOW, NOW)
    assert fire is not None
    assert NOW + timedelta(minutes=15) <= fire <= NOW + timedelta(minutes=15, seconds=30)


def test_a_crontab_line_with_jitter_fires_at_its_minute_in_its_zone() -> None:
    """A five-field line with jitter (APScheduler 3.11 refused jitter through from_crontab) fires on time."""
    schedule = Schedule(cron="30 7-19 * * mon-fri", time_zone="Europe/Berlin", jitter_seconds=5)
    trigger = build_trigger(schedule, NOW)
    assert isinstance(trigger, CronTrigger)
    assert trigger.jitter == 5
    fire = trigger.get_next_fire_time(None, NOW)
    assert fire is not None
    expected = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # 10:30 in Berlin (CET), the first 7-19:30 after 10:00
    assert expected <= fire.astimezone(UTC) <= expected + timedelta(seconds=5)


def test_the_crontab_line_means_what_from_crontab_means() -> None:
    """Our five fields map onto CronTrigger exactly as APScheduler's own crontab reader maps them."""
    line = "*/10 3,4 1-15 jan-jun sat,sun"
    ours = build_trigger(Schedule(cron=line, time_zone="UTC"), NOW)
    theirs = CronTrigger.from_crontab(line, timezone="UTC")
    moment = NOW
    for _ in range(20):
        moment_ours, moment_theirs = (
            ours.get_next_fire_time(None, moment),
            theirs.get_next_fire_time(None, moment),
        )
        assert moment_ours == moment_theirs
        assert moment_ours is not None
        moment = moment_ours + timedelta(seconds=1)


def test_named_fields_reach_seconds() -> None:
    """``{second: "*/2"}`` fires every two seconds: the per-second form of the cron schedule."""
    trigger = build_trigger(Schedule(cron={"second": "*/2"}), NOW)
    first = trigger.get_next_fire_time(None, NOW)
    assert first == NOW.replace(second=8)
    assert trigger.get_next_fire_time(first, first + timedelta(microseconds=1)) == NOW.replace(second=10)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        (
            "61 * * * *",
            "minute '61': Error validating expression '61': the last value (61) is higher than the "
            "maximum value (59)",
        ),
        (
            "0 25 * * *",
            "hour '25': Error validating expression '25': the last value (25) is higher than the "
            "maximum value (23)",
        ),
        (
            "0 0 * * funday",
            "day of week 'funday': Invalid weekday name \"funday\"",
        ),
        ("0 0 30 2 *", "this schedule never fires (no date matches it from now on)"),
        (
            {"second": "*/0"},
            "second '*/0': Increment must be higher than 0",
        ),
        ({"year": "2020"}, "this schedule never fires (no date matches it from now on)"),
    ],
)
def test_bad_expressions_are_named_with_their_field(cron: object, message: str) -> None:
    """APScheduler's parser judges the expression; the message names the field it refused."""
    with pytest.raises(ValueError, match=r".*") as caught:
        build_trigger(Schedule.model_validate({"cron": cron}), NOW)
    assert str(caught.value) == message


def write(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(
        "accounts:\n"
        "  acme:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        f"    schedule: {schedule}\n"
        "    hubspot: {access_token_env: X}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('{cron: "61 * * * *"}', "5:16: accounts.acme.schedule.cron: minute '61': Error validating"),
        (
            '{cron: "0 9 * * 1-5"}',
            "5:16: accounts.acme.schedule.cron: day of week '1-5': write weekday names",
        ),
        ('{cron: "0 9 * *"}', "5:16: accounts.acme.schedule.cron: cron takes five fields"),
        ("{cron: {secnd: 1}}", "5:23: accounts.acme.schedule.cron.secnd: unknown key"),
        ("{every: 400d}", "5:16: accounts.acme.schedule.every: a time span may be at most 366 days"),
        ("{every: 99999999999999999999s}", "5:16: accounts.acme.schedule.every: expected a time span"),
        ('{every: 1m, cron: "* * * * *"}', "5:5: accounts.acme.schedule: set exactly one of every, cron"),
    ],
)
def test_schedule_problems_are_located_when_the_settings_load(
    tmp_path: Path, schedule: str, message: str
) -> None:
    """`followup validate`, `run` and `serve` load settings the same way: a bad schedule is a located line."""
    path = write(tmp_path, schedule)
    with pytest.raises(ConfigError) as caught:
        validate_settings(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:{message}")


def test_a_good_cron_schedule_validates(tmp_path: Path) -> None:
    """The documented forms load."""
    for schedule in (
        '{cron: "*/15 7-19 * * mon-fri", time_zone: Europe/Berlin, jitter_seconds: 30}',
        "{cron: {second: '*/2'}}",
        "{cron: {minute: 0, hour: 7-19, day_of_week: mon-fri}}",
    ):
        _, accounts = validate_settings(write(tmp_path, schedule))
        assert [a.name for a in accounts] == ["acme"]
