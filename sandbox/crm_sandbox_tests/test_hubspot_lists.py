"""Lists v3: MANUAL contact lists as nurture containers, with memberships added, removed and read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.lists import ApiException, ListCreateRequest, ListSearchRequest, MembershipChangeRequest

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=4, deals=30, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _create(api: HubSpot, name: str = "Nurture: not now") -> str:
    request = ListCreateRequest(name=name, object_type_id="0-1", processing_type="MANUAL")
    return str(api.crm.lists.lists_api.create(request).list.list_id)


def test_create_returns_200_with_the_list_and_it_is_found_by_id_and_name(api: HubSpot) -> None:
    """Create answers 200 with {"list": ...}; the list is then fetched by id and by name."""
    list_id = _create(api)
    fetched = api.crm.lists.lists_api.get_by_id(list_id).list
    assert fetched.processing_type == "MANUAL"
    by_name = api.crm.lists.lists_api.get_by_name("Nurture: not now", "0-1").list
    assert by_name.list_id == list_id


def test_duplicate_name_is_409(api: HubSpot) -> None:
    """A second list with the same name is rejected with 409 CONFLICT."""
    _create(api)
    with pytest.raises(ApiException) as caught:
        _create(api)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["category"] == "CONFLICT"


def test_memberships_add_remove_and_read(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Add reports recordsIdsAdded and missing ids; remove and add-and-remove change membership; reads page
    it."""
    list_id = _create(api)
    added = api.crm.lists.memberships_api.add(list_id, ["1", "2", "3", "999999"])
    assert sorted(added.records_ids_added) == ["1", "2", "3"]
    assert added.record_ids_missing == ["999999"]
    again = api.crm.lists.memberships_api.add(list_id, ["1"])
    assert again.records_ids_added == []
    removed = api.crm.lists.memberships_api.remove(list_id, ["2"])
    assert removed.record_ids_removed == ["2"]
    both = api.crm.lists.memberships_api.add_and_remove(
        list_id, MembershipChangeRequest(record_ids_to_add=["4"], record_ids_to_remove=["3"])
    )
    assert (both.records_ids_added, both.record_ids_removed) == (["4"], ["3"])
    first = api.crm.lists.memberships_api.get_page(list_id, limit=1)
    assert [m.record_id for m in first.results] == ["1"]
    second = api.crm.lists.memberships_api.get_page(list_id, after=first.paging.next.after, limit=10)
    assert [m.record_id for m in second.results] == ["4"]
    assert second.paging is None


def test_memberships_wire_spelling(hs: HubSpotSandbox, api: HubSpot) -> None:
    """The add response uses HubSpot's own key spelling recordsIdsAdded on the wire."""
    list_id = _create(api)
    response = requests.put(
        f"{hs.base_url}/crm/v3/lists/{list_id}/memberships/add",
        json=["5"],
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["recordsIdsAdded"] == ["5"]


def test_search_finds_live_lists_only(api: HubSpot, hs: HubSpotSandbox) -> None:
    """List search matches by name and drops deleted lists, which stay readable by id with deletedAt."""
    keep = _create(api, "Nurture: keep")
    gone = _create(api, "Nurture: gone")
    requests.delete(
        f"{hs.base_url}/crm/v3/lists/{gone}",
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    found = api.crm.lists.lists_api.do_search(ListSearchRequest(query="nurture", processing_types=["MANUAL"]))
    assert [found_list.list_id for found_list in found.lists] == [keep]
    assert found.total == 1
    assert api.crm.lists.lists_api.get_by_id(gone).list.deleted_at is not None


def test_unknown_list_is_404(api: HubSpot) -> None:
    """Reading a list that does not exist raises a 404."""
    with pytest.raises(Exception) as caught:
        api.crm.lists.lists_api.get_by_id("424242")
    assert getattr(caught.value, "status", None) == 404
