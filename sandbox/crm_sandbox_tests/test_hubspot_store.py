"""The HubSpot portal's data layer: dataset rendering, roll-ups, the search index, and snapshot/restore."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import requests
from crm_sandbox.clock import SandboxClock
from crm_sandbox.dataset import ActivityKind, GenActivity, generate
from crm_sandbox.hubspot import RateLimitConfig, build_portal, running_hubspot_sandbox
from crm_sandbox.hubspot.catalog import CALL_DISPOSITIONS
from crm_sandbox.hubspot.render import deal_rollups, iso_ms, ms_of, parse_datetime_ms, render_activity
from crm_sandbox.hubspot.search_query import compile_query
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInput

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _activity(kind: ActivityKind, outcome: str | None, direction: str = "outbound") -> GenActivity:
    return GenActivity(
        id=1, kind=kind, deal_id=1, contact_id=2, owner_id=3, direction=direction,
        occurred_at=NOW - timedelta(days=1), outcome=outcome, subject="Call about pricing", body="...",
        duration_s=600,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "outcome", "direction", "expected"),
    [
        (ActivityKind.CALL, "connected", "outbound",
         {"hs_call_disposition": CALL_DISPOSITIONS["connected"], "hs_call_status": "COMPLETED",
          "hs_call_direction": "OUTBOUND", "hs_call_duration": "600000"}),
        (ActivityKind.CALL, "no_answer", "outbound",
         {"hs_call_disposition": CALL_DISPOSITIONS["no_answer"], "hs_call_status": "NO_ANSWER"}),
        (ActivityKind.EMAIL, "replied", "inbound",
         {"hs_email_direction": "INCOMING_EMAIL", "hs_email_status": "SENT"}),
        (ActivityKind.EMAIL, "bounced", "outbound",
         {"hs_email_direction": "EMAIL", "hs_email_status": "BOUNCED"}),
        (ActivityKind.MEETING, "no_show", "outbound", {"hs_meeting_outcome": "NO_SHOW"}),
        (ActivityKind.MEETING, "cancelled", "outbound", {"hs_meeting_outcome": "CANCELED"}),
        (ActivityKind.TASK, "completed", "outbound", {"hs_task_status": "COMPLETED", "hs_task_type": "CALL"}),
        (ActivityKind.TASK, "not_started", "outbound", {"hs_task_status": "NOT_STARTED"}),
    ],
)  # fmt: skip
def test_activities_render_in_hubspot_vocabulary(
    kind: ActivityKind, outcome: str, direction: str, expected: dict[str, str]
) -> None:
    """The dataset's neutral outcome words become HubSpot's enumeration values and disposition GUIDs."""
    props = render_activity(_activity(kind, outcome, direction))
    assert {k: props.get(k) for k in expected} == expected
    assert props["hs_timestamp"] == iso_ms(ms_of(NOW - timedelta(days=1)))


def test_meeting_end_time_follows_duration() -> None:
    """A meeting's end time is its start plus its duration."""
    props = render_activity(_activity(ActivityKind.MEETING, "completed"))
    start = parse_datetime_ms(props["hs_meeting_start_time"])
    end = parse_datetime_ms(props["hs_meeting_end_time"])
    assert start is not None
    assert end is not None
    assert end - start == 600_000


def test_timestamps_round_trip_with_milliseconds() -> None:
    """ms_of, iso_ms and parse_datetime_ms agree, including milliseconds and ms-epoch strings."""
    when = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    assert iso_ms(ms_of(when)) == "2024-05-01T12:30:15.123Z"
    assert parse_datetime_ms("2024-05-01T12:30:15.123Z") == ms_of(when)
    assert parse_datetime_ms(str(ms_of(when))) == ms_of(when)


def test_loaded_rollups_match_the_rollup_rules() -> None:
    """The loader's one-pass roll-ups equal deal_rollups computed from the rendered engagements."""
    portal = build_portal(generate(13, 40, NOW), clock=SandboxClock(), rate_limits=RateLimitConfig.off())
    store = portal.store
    store.clock.set(NOW)
    names = ("notes_last_contacted", "notes_last_updated", "notes_next_activity_date", "num_contacted_notes")
    for deal_id in store.tables["deals"].live[:40]:
        engagements = []
        for kind in ("calls", "emails", "meetings", "notes", "tasks"):
            table = store.tables[kind]
            for engagement_id in store.live_targets("deals", kind, deal_id):
                engagements.append((kind, table.props(table.records[engagement_id])))
        expected = deal_rollups(engagements, ms_of(NOW))
        deal = store.tables["deals"].records[deal_id]
        loaded = {n: store.tables["deals"].value(deal, n) for n in names}
        assert loaded == {n: expected.get(n) for n in names}


def test_index_answers_equal_a_full_scan() -> None:
    """For many random filter combinations, the indexed search returns exactly what a scan returns."""
    portal = build_portal(generate(21, 150, NOW), clock=SandboxClock(), rate_limits=RateLimitConfig.off())
    store = portal.store
    index = store.indexes["deals"]
    table = store.tables["deals"]
    rng = random.Random(5)
    stamps = sorted(r.updated_ms for r in table.iter_live())
    for _ in range(60):
        low, high = sorted(rng.sample(stamps, 2))
        filters = [
            {"propertyName": "hs_lastmodifieddate", "operator": rng.choice(["GTE", "GT"]), "value": str(low)},
            {
                "propertyName": "hs_lastmodifieddate",
                "operator": rng.choice(["LTE", "LT"]),
                "value": str(high),
            },
        ]
        if rng.random() < 0.5:
            filters.append(
                {"propertyName": "pipeline", "operator": "EQ", "value": rng.choice(["default", "enterprise"])}
            )
        if rng.random() < 0.3:
            filters.append(
                {"propertyName": "amount", "operator": "GT", "value": str(rng.randint(1000, 80000))}
            )
        sort = rng.choice(["hs_lastmodifieddate", "-hs_lastmodifieddate", "amount", "hs_object_id"])
        query = compile_query(
            {"filterGroups": [{"filters": filters}], "sorts": [sort]},
            lambda n: store.property_type("deals", n),
        )
        total, page = index.run(query, 0, 10_000, None)
        scanned = [r for r in table.iter_live() if all(index.matches(r, f) for g in query.groups for f in g)]
        assert total == len(scanned)
        assert {r.id for r in page} == {r.id for r in scanned}
        if sort.lstrip("-") == "hs_lastmodifieddate":
            keys = [r.updated_ms for r in page]
            assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_snapshot_and_restore_put_the_data_back() -> None:
    """After a snapshot, writes are undone by restore: an update reverts and a created deal disappears."""
    with running_hubspot_sandbox(seed=8, deals=20, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        api = HubSpot(access_token=hs.access_token, host=hs.base_url)
        original = api.crm.deals.basic_api.get_by_id("1", properties=["hs_next_step"]).properties[
            "hs_next_step"
        ]
        hs.control.snapshot("before")
        api.crm.deals.basic_api.update("1", SimplePublicObjectInput(properties={"hs_next_step": "Changed"}))
        created = requests.post(
            f"{hs.base_url}/crm/v3/objects/deals",
            json={"properties": {"dealname": "Temporary"}},
            headers={"Authorization": f"Bearer {hs.access_token}"},
            timeout=10,
        ).json()["id"]
        hs.control.restore("before")
        assert (
            api.crm.deals.basic_api.get_by_id("1", properties=["hs_next_step"]).properties["hs_next_step"]
            == original
        )
        gone = requests.get(
            f"{hs.base_url}/crm/v3/objects/deals/{created}",
            headers={"Authorization": f"Bearer {hs.access_token}"},
            timeout=10,
        )
        assert gone.status_code == 404
        search = requests.post(
            f"{hs.base_url}/crm/v3/objects/deals/search",
            json={
                "filterGroups": [
                    {"filters": [{"propertyName": "hs_next_step", "operator": "EQ", "value": "changed"}]}
                ]
            },
            headers={"Authorization": f"Bearer {hs.access_token}"},
            timeout=10,
        )
        assert search.json()["total"] == 0


def test_a_snapshot_can_be_restored_twice() -> None:
    """Restoring the same snapshot twice gives the same data, so tests can reset between cases."""
    with running_hubspot_sandbox(seed=8, deals=10, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        api = HubSpot(access_token=hs.access_token, host=hs.base_url)
        hs.control.snapshot("clean")
        for attempt in ("one", "two"):
            api.crm.deals.basic_api.update("2", SimplePublicObjectInput(properties={"hs_next_step": attempt}))
            hs.control.restore("clean")
            step = api.crm.deals.basic_api.get_by_id("2", properties=["hs_next_step"]).properties[
                "hs_next_step"
            ]
            assert step not in ("one", "two")
