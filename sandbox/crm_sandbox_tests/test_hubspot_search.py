"""CRM search: operators, sorts, paging and total, the 200 limit, the 10,000 cap, archived records, index
lag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.deals import (
    ApiException,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def hs() -> Iterator[HubSpotSandbox]:
    """One read-only sandbox for the query tests (tests that write start their own)."""
    with running_hubspot_sandbox(seed=5, deals=300, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _search(hs: HubSpotSandbox, body: dict[str, Any], kind: str = "deals") -> requests.Response:
    return requests.post(
        f"{hs.base_url}/crm/v3/objects/{kind}/search",
        json=body,
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )


def _all_deals(hs: HubSpotSandbox, props: list[str]) -> list[dict[str, Any]]:
    table = hs.portal.store.tables["deals"]
    return [{"id": str(r.id), **{p: table.value(r, p) for p in props}} for r in table.iter_live()]


def _ids(hs: HubSpotSandbox, filters: list[dict[str, Any]], **extra: Any) -> list[str]:
    body = {"filterGroups": [{"filters": filters}], "limit": 200, **extra}
    response = _search(hs, body)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def test_window_on_lastmodified_sorted_ascending_pages_consistently(api: HubSpot, hs: HubSpotSandbox) -> None:
    """A GTE/LT window on hs_lastmodifieddate, sorted ascending, pages through exactly the matching deals in
    order."""
    deals = _all_deals(hs, ["hs_lastmodifieddate"])
    stamps = sorted(d["hs_lastmodifieddate"] for d in deals)
    low, high = stamps[40], stamps[220]
    low_ms = int(datetime.fromisoformat(low.replace("Z", "+00:00")).timestamp() * 1000)
    high_ms = int(datetime.fromisoformat(high.replace("Z", "+00:00")).timestamp() * 1000)
    expected = sorted(
        (d for d in deals if low <= d["hs_lastmodifieddate"] < high),
        key=lambda d: (d["hs_lastmodifieddate"], int(d["id"])),
    )
    got: list[str] = []
    after = None
    while True:
        page = api.crm.deals.search_api.do_search(
            PublicObjectSearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[
                            Filter(property_name="hs_lastmodifieddate", operator="GTE", value=str(low_ms)),
                            Filter(property_name="hs_lastmodifieddate", operator="LT", value=str(high_ms)),
                        ]
                    )
                ],
                sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                properties=["dealname"],
                limit=50,
                after=after,
            )
        )
        assert page.total == len(expected)
        got.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert got == [d["id"] for d in expected]


def test_search_results_carry_requested_and_system_properties(hs: HubSpotSandbox) -> None:
    """Search returns the requested properties plus hs_object_id, createdate and hs_lastmodifieddate, no
    associations."""
    result = _search(hs, {"limit": 1, "properties": ["dealname"]}).json()["results"][0]
    assert set(result["properties"]) == {"dealname", "hs_object_id", "createdate", "hs_lastmodifieddate"}
    assert "associations" not in result


@pytest.mark.parametrize(
    ("operator", "check"),
    [
        ("EQ", lambda v: v == "closedwon"),
        ("NEQ", lambda v: v != "closedwon"),
    ],
)
def test_eq_and_neq_on_an_enumeration(hs: HubSpotSandbox, operator: str, check: Any) -> None:
    """EQ and NEQ on dealstage return exactly the deals whose stage matches the predicate."""
    deals = _all_deals(hs, ["dealstage"])
    expected = sorted((d["id"] for d in deals if check(d["dealstage"])), key=int)
    got = _ids(hs, [{"propertyName": "dealstage", "operator": operator, "value": "closedwon"}])
    assert got == expected[:200]


def test_in_not_in_and_has_property(hs: HubSpotSandbox) -> None:
    """IN, NOT_IN, HAS_PROPERTY and NOT_HAS_PROPERTY agree with the stored values."""
    deals = _all_deals(hs, ["dealstage", "hs_next_step"])
    stages = ["closedwon", "closedlost"]
    assert (
        _ids(hs, [{"propertyName": "dealstage", "operator": "IN", "values": stages}])
        == sorted((d["id"] for d in deals if d["dealstage"] in stages), key=int)[:200]
    )
    assert len(_ids(hs, [{"propertyName": "dealstage", "operator": "NOT_IN", "values": stages}])) == min(
        200, sum(d["dealstage"] not in stages for d in deals)
    )
    missing = sorted((d["id"] for d in deals if d["hs_next_step"] is None), key=int)
    assert _ids(hs, [{"propertyName": "hs_next_step", "operator": "NOT_HAS_PROPERTY"}]) == missing[:200]
    total = _search(
        hs, {"filterGroups": [{"filters": [{"propertyName": "hs_next_step", "operator": "HAS_PROPERTY"}]}]}
    )
    assert total.json()["total"] == len(deals) - len(missing)


def test_between_and_number_comparisons(hs: HubSpotSandbox) -> None:
    """BETWEEN and GT on amount compare numerically, not as text."""
    deals = [d for d in _all_deals(hs, ["amount"]) if d["amount"] is not None]
    between = _ids(
        hs, [{"propertyName": "amount", "operator": "BETWEEN", "value": "5000", "highValue": "50000"}]
    )
    assert between == sorted((d["id"] for d in deals if 5000 <= float(d["amount"]) <= 50000), key=int)[:200]
    greater = _ids(hs, [{"propertyName": "amount", "operator": "GT", "value": 100000}])
    assert greater == sorted((d["id"] for d in deals if float(d["amount"]) > 100000), key=int)[:200]


def test_filter_groups_are_ored(hs: HubSpotSandbox) -> None:
    """Two filter groups return the union of what each returns alone."""
    won = {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}]}
    lost = {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedlost"}]}
    both = _search(hs, {"filterGroups": [won, lost], "limit": 200}).json()
    one = _search(hs, {"filterGroups": [won]}).json()["total"]
    other = _search(hs, {"filterGroups": [lost]}).json()["total"]
    assert both["total"] == one + other


def test_descending_string_sort_and_contains_token(hs: HubSpotSandbox) -> None:
    """A string-form descending sort orders by that property; CONTAINS_TOKEN matches a word of dealname."""
    body = {
        "sorts": ["-amount"],
        "limit": 20,
        "properties": ["amount"],
        "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "HAS_PROPERTY"}]}],
    }
    amounts = [float(r["properties"]["amount"]) for r in _search(hs, body).json()["results"]]
    assert amounts == sorted(amounts, reverse=True)
    word = _all_deals(hs, ["dealname"])[0]["dealname"].split()[0]
    hits = _search(
        hs,
        {
            "filterGroups": [
                {"filters": [{"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": word}]}
            ],
            "properties": ["dealname"],
        },
    )
    assert hits.json()["total"] >= 1
    assert all(word.lower() in r["properties"]["dealname"].lower() for r in hits.json()["results"])


def test_limit_above_200_is_400(api: HubSpot) -> None:
    """A search limit above 200 is rejected with 400 VALIDATION_ERROR."""
    with pytest.raises(ApiException) as caught:
        api.crm.deals.search_api.do_search(PublicObjectSearchRequest(limit=201))
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"


def test_paging_past_10000_is_400(hs: HubSpotSandbox) -> None:
    """An `after` at or beyond 10,000 is answered with 400, as HubSpot caps a query at 10,000 results."""
    response = _search(hs, {"limit": 10, "after": "10000"})
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_bad_operator_unknown_property_and_too_many_groups_are_400(hs: HubSpotSandbox) -> None:
    """Malformed filters are rejected with 400 rather than silently ignored."""
    bad_operator = {
        "filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "LIKE", "value": "x"}]}]
    }
    unknown = {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]}
    group = {"filters": [{"propertyName": "dealname", "operator": "HAS_PROPERTY"}]}
    assert _search(hs, bad_operator).status_code == 400
    assert _search(hs, unknown).status_code == 400
    assert _search(hs, {"filterGroups": [group] * 6}).status_code == 400


def test_engagement_search_by_timestamp(hs: HubSpotSandbox) -> None:
    """Tasks are searchable by hs_timestamp with ms-epoch values like deals."""
    now_ms = int(NOW.timestamp() * 1000)
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_timestamp", "operator": "GTE", "value": str(now_ms)}]}
        ],
        "properties": ["hs_timestamp", "hs_task_status"],
        "limit": 100,
    }
    results = _search(hs, body, "tasks").json()["results"]
    assert all(r["properties"]["hs_timestamp"] >= "2026-03-02T09:00:00.000Z" for r in results)


def test_archived_records_never_appear_in_search() -> None:
    """An archived deal drops out of search results and totals, though it is listed with archived=true."""
    with running_hubspot_sandbox(seed=5, deals=30, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        everything = {"limit": 200}
        before = _search(hs, everything).json()
        requests.delete(
            f"{hs.base_url}/crm/v3/objects/deals/3",
            headers={"Authorization": f"Bearer {hs.access_token}"},
            timeout=10,
        )
        after = _search(hs, everything).json()
        assert after["total"] == before["total"] - 1
        assert "3" not in {r["id"] for r in after["results"]}


def test_index_lag_hides_fresh_changes_until_the_clock_moves() -> None:
    """With search_lag_ms, an updated deal is invisible to search until that much sandbox time has passed."""
    with running_hubspot_sandbox(
        seed=5, deals=30, now=NOW, rate_limits=RateLimitConfig.off(), search_lag_ms=5_000
    ) as hs:
        hs.control.set_clock(NOW)
        api = HubSpot(access_token=hs.access_token, host=hs.base_url)
        api.crm.deals.basic_api.update("2", SimplePublicObjectInput(properties={"hs_next_step": "Lagging"}))
        query = {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_next_step", "operator": "EQ", "value": "lagging"}]}
            ]
        }
        assert _search(hs, query).json()["total"] == 0
        hs.control.set_clock(NOW + timedelta(seconds=6))
        assert [r["id"] for r in _search(hs, query).json()["results"]] == ["2"]


def test_updates_move_records_within_the_sorted_index() -> None:
    """After an update, a lastmodified window query finds the deal at its new time and not at its old one."""
    with running_hubspot_sandbox(seed=5, deals=30, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        hs.control.set_clock(NOW)
        window = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GTE",
                            "value": str(int(NOW.timestamp() * 1000)),
                        }
                    ]
                }
            ]
        }
        assert _search(hs, window).json()["total"] == 0
        api = HubSpot(access_token=hs.access_token, host=hs.base_url)
        api.crm.deals.basic_api.update("9", SimplePublicObjectInput(properties={"hs_next_step": "Moved"}))
        assert [r["id"] for r in _search(hs, window).json()["results"]] == ["9"]


def test_composite_watermark_query_pages_in_order(hs: HubSpotSandbox) -> None:
    """The (ts > X) OR (ts = X AND id > Y) watermark query pages through its matches in (ts, id) order."""
    deals = _all_deals(hs, ["hs_lastmodifieddate"])
    ordered = sorted(deals, key=lambda d: (d["hs_lastmodifieddate"], int(d["id"])))
    pivot = ordered[100]
    ts = str(
        int(datetime.fromisoformat(pivot["hs_lastmodifieddate"].replace("Z", "+00:00")).timestamp() * 1000)
    )
    groups = [
        {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": ts}]},
        {"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": ts},
            {"propertyName": "hs_object_id", "operator": "GT", "value": pivot["id"]},
        ]},
    ]  # fmt: skip
    got: list[str] = []
    after = "0"
    while True:
        sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
        body = {"filterGroups": groups, "sorts": sorts, "limit": 37, "after": after}
        page = _search(hs, body).json()
        got.extend(r["id"] for r in page["results"])
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert got == [d["id"] for d in ordered[101:]]
