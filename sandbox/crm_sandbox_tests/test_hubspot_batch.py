"""CRM objects v3 batch endpoints: 100-input cap, 201 create, 207 partial failure, upsert, 204 archive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.deals import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=11, deals=40, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _read(ids: list[str]) -> BatchReadInputSimplePublicObjectId:
    return BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["dealname"], properties_with_history=[]
    )


def test_batch_read_all_found_is_200(api: HubSpot) -> None:
    """Reading existing ids returns every one of them with the requested properties and status COMPLETE."""
    result = api.crm.deals.batch_api.read(_read(["1", "2", "3"]))
    assert result.status == "COMPLETE"
    assert sorted(r.id for r in result.results) == ["1", "2", "3"]
    assert all(r.properties["dealname"] for r in result.results)


def test_batch_read_with_unknown_id_is_207_with_errors(hs: HubSpotSandbox) -> None:
    """An unknown id yields 207 with numErrors and an OBJECT_NOT_FOUND error naming it; found ids still come
    back."""
    response = requests.post(
        f"{hs.base_url}/crm/v3/objects/deals/batch/read",
        json={"inputs": [{"id": "1"}, {"id": "999999"}], "properties": ["dealname"]},
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 207
    body = response.json()
    assert [r["id"] for r in body["results"]] == ["1"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["999999"]


def test_batch_read_over_100_inputs_is_400(api: HubSpot) -> None:
    """More than 100 inputs in one batch call is rejected with 400 VALIDATION_ERROR."""
    with pytest.raises(ApiException) as caught:
        api.crm.deals.batch_api.read(_read([str(i) for i in range(1, 102)]))
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"


def test_batch_create_is_201_and_echoes_trace_ids(api: HubSpot) -> None:
    """Batch create answers 201 (the SDK returns the results) and echoes each objectWriteTraceId."""
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={"dealname": f"Batch {n}"}, object_write_trace_id=f"t{n}"
        )
        for n in range(3)
    ]
    result = api.crm.deals.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert result is not None
    assert sorted(r.object_write_trace_id for r in result.results) == ["t0", "t1", "t2"]
    assert {r.properties["dealname"] for r in result.results} == {"Batch 0", "Batch 1", "Batch 2"}


def test_batch_create_with_a_bad_value_writes_nothing(api: HubSpot, hs: HubSpotSandbox) -> None:
    """One invalid input fails the whole batch with 400 and no record of the batch is left behind."""
    before = len(hs.portal.store.tables["deals"].live)
    inputs = [
        SimplePublicObjectBatchInputForCreate(properties={"dealname": "ok"}),
        SimplePublicObjectBatchInputForCreate(properties={"dealname": "bad", "amount": "lots"}),
    ]
    with pytest.raises(ApiException) as caught:
        api.crm.deals.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert caught.value.status == 400
    assert len(hs.portal.store.tables["deals"].live) == before


def test_batch_update_partial_is_207(hs: HubSpotSandbox, api: HubSpot) -> None:
    """Updating a known and an unknown id answers 207; the known one is updated."""
    body = {
        "inputs": [
            {"id": "4", "properties": {"hs_next_step": "Call CFO"}},
            {"id": "888888", "properties": {}},
        ]
    }
    response = requests.post(
        f"{hs.base_url}/crm/v3/objects/deals/batch/update",
        json=body,
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 207
    assert (
        api.crm.deals.basic_api.get_by_id("4", properties=["hs_next_step"]).properties["hs_next_step"]
        == "Call CFO"
    )


def test_batch_update_all_found_is_200(api: HubSpot) -> None:
    """A batch update of existing ids returns the updated objects."""
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id="6", properties={"followup_state": "nurture"})]
    )
    result = api.crm.deals.batch_api.update(batch)
    assert result.results[0].properties["followup_state"] == "nurture"


def test_batch_upsert_creates_then_updates_by_unique_property(api: HubSpot) -> None:
    """Upsert by a property creates the record first (new=true) and updates the same record next
    (new=false)."""

    def upsert(name: str) -> tuple[str, bool]:
        batch = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="Unique deal", id_property="dealname", properties={"hs_next_step": name}
                )
            ]
        )
        result = api.crm.deals.batch_api.upsert(batch).results[0]
        return result.id, result.new

    first_id, first_new = upsert("one")
    second_id, second_new = upsert("two")
    assert (first_new, second_new) == (True, False)
    assert first_id == second_id


def test_batch_archive_is_204(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Batch archive answers 204 and the records move to the archived listing."""
    api.crm.deals.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id="8")]))
    archived = api.crm.deals.basic_api.get_page(archived=True)
    assert [d.id for d in archived.results] == ["8"]
    read = requests.post(
        f"{hs.base_url}/crm/v3/objects/deals/batch/read?archived=true",
        json={"inputs": [{"id": "8"}]},
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert read.status_code == 200
    assert read.json()["results"][0]["archived"] is True


def test_batch_update_same_id_twice_keeps_both_changes(api: HubSpot) -> None:
    """Two inputs for one id apply in order, so changes to different properties both stick."""
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id="9", properties={"hs_next_step": "First"}),
            SimplePublicObjectBatchInput(id="9", properties={"followup_reason": "Second"}),
        ]
    )
    api.crm.deals.batch_api.update(batch)
    deal = api.crm.deals.basic_api.get_by_id("9", properties=["hs_next_step", "followup_reason"])
    assert (deal.properties["hs_next_step"], deal.properties["followup_reason"]) == ("First", "Second")


def test_batch_read_after_an_update_shows_the_new_value(api: HubSpot) -> None:
    """A deal read, updated and read again comes back with the update (no stale cached body)."""
    first = api.crm.deals.batch_api.read(_read(["10"])).results[0]
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id="10", properties={"dealname": "Renamed deal"})]
    )
    api.crm.deals.batch_api.update(batch)
    second = api.crm.deals.batch_api.read(_read(["10"])).results[0]
    assert first.properties["dealname"] != "Renamed deal"
    assert second.properties["dealname"] == "Renamed deal"
    assert second.updated_at >= first.updated_at


def test_search_and_batch_read_both_see_an_update(hs: HubSpotSandbox, api: HubSpot) -> None:
    """After reads through both search and batch read, an update shows in both (no stale cached bodies)."""
    url = f"{hs.base_url}/crm/v3/objects/deals/search"
    auth = {"Authorization": f"Bearer {hs.access_token}"}
    by_id = {"propertyName": "hs_object_id", "operator": "EQ", "value": "11"}
    query = {"filterGroups": [{"filters": [by_id]}], "properties": ["dealname"]}
    for _ in range(2):
        api.crm.deals.batch_api.read(_read(["11"]))
        requests.post(url, json=query, headers=auth, timeout=10)
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[SimplePublicObjectBatchInput(id="11", properties={"dealname": "Fresh name"})]
    )
    api.crm.deals.batch_api.update(batch)
    assert api.crm.deals.batch_api.read(_read(["11"])).results[0].properties["dealname"] == "Fresh name"
    found = requests.post(url, json=query, headers=auth, timeout=10).json()["results"][0]
    assert found["properties"]["dealname"] == "Fresh name"
