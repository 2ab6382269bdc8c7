"""Property histories the HubSpot way: ``propertiesWithHistory`` on object, list and batch reads, seeded from
the dataset's history rows, with a version for every write and HubSpot's lower limits for history reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from crm_sandbox.dataset import Dataset, generate
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.deals import ApiException, BatchReadInputSimplePublicObjectId, SimplePublicObjectId

NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(5, 60, NOW, history=True)


@pytest.fixture
def hs(dataset: Dataset) -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(dataset=dataset, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _history_read(ids: list[str], properties: list[str]) -> BatchReadInputSimplePublicObjectId:
    return BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=[], properties_with_history=properties
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def test_a_deal_read_with_history_lists_every_value_newest_first(api: HubSpot, dataset: Dataset) -> None:
    """The dealstage versions are the dataset's stage rows, newest first, the oldest at the deal's creation,
    the newest the current stage; each version has a value, a timestamp and a source type."""
    deal = next(
        d for d in dataset.deals if sum(r.deal_id == d.id and r.field == "stage" for r in dataset.history) > 2
    )
    rows = [r for r in dataset.history if r.deal_id == deal.id and r.field == "stage"]
    record = api.crm.deals.basic_api.get_by_id(
        str(deal.id), properties=["dealstage"], properties_with_history=["dealstage"]
    )
    versions = record.properties_with_history["dealstage"]
    assert [v.value for v in versions] == [str(r.value) for r in reversed(rows)]
    assert [_utc(v.timestamp) for v in versions] == [r.at for r in reversed(rows)]
    assert versions[0].value == record.properties["dealstage"] == deal.stage_id
    assert _utc(versions[-1].timestamp) == deal.created_at
    assert all(v.source_type for v in versions)


def test_custom_properties_and_amounts_are_rendered_as_hubspot_stores_them(
    hs: HubSpotSandbox, dataset: Dataset
) -> None:
    """Numbers without a trailing .0, dates as YYYY-MM-DD, close dates as midnight-UTC datetimes, and an
    owner change names the owner's user; the raw JSON is ``propertiesWithHistory: {name: [...]}``."""
    owner_rows = [r for r in dataset.history if r.field == "owner"]
    deal_id = next(r.deal_id for r in owner_rows if sum(x.deal_id == r.deal_id for x in owner_rows) > 1)
    response = requests.get(
        f"{hs.base_url}/crm/v3/objects/deals/{deal_id}",
        params={"propertiesWithHistory": "hubspot_owner_id,amount,closedate,followup_next_step_date"},
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    history = response.json()["propertiesWithHistory"]
    owners = history["hubspot_owner_id"]
    assert len(owners) == 2
    assert all(v["updatedByUserId"] == 1_000_000 + int(v["value"]) for v in owners)
    assert all(v["sourceId"] == f"userId:{v['updatedByUserId']}" for v in owners)
    for version in history.get("amount", []):
        assert not version["value"].endswith(".0")
    for version in history.get("closedate", []):
        assert version["value"].endswith("T00:00:00.000Z")
    for version in history.get("followup_next_step_date", []):
        assert version["value"] == "" or len(version["value"]) == 10


def test_a_write_adds_a_version_and_clearing_adds_an_empty_one(api: HubSpot, hs: HubSpotSandbox) -> None:
    """PATCH through the SDK: the new value is the newest version, at the sandbox clock's time, with source
    type INTEGRATION; clearing the property adds a version with the value ""; the earlier ones stay."""
    before = api.crm.deals.basic_api.get_by_id("3", properties_with_history=["hs_next_step"])
    older = before.properties_with_history.get("hs_next_step", [])
    hs.control.set_clock(NOW + timedelta(days=1))
    api.crm.deals.basic_api.update("3", {"properties": {"hs_next_step": "Send the pilot plan by Friday"}})
    hs.control.set_clock(NOW + timedelta(days=2))
    api.crm.deals.basic_api.update("3", {"properties": {"hs_next_step": ""}})
    after = api.crm.deals.basic_api.get_by_id("3", properties_with_history=["hs_next_step"])
    versions = after.properties_with_history["hs_next_step"]
    assert [v.value for v in versions[:2]] == ["", "Send the pilot plan by Friday"]
    assert [v.source_type for v in versions[:2]] == ["INTEGRATION", "INTEGRATION"]
    assert _utc(versions[1].timestamp) - (NOW + timedelta(days=1)) < timedelta(seconds=5)
    assert [v.value for v in versions[2:]] == [v.value for v in older]


def test_a_deal_created_through_the_api_has_its_values_since_creation(api: HubSpot) -> None:
    created = api.crm.deals.basic_api.create(
        {"properties": {"dealname": "New", "dealstage": "appointmentscheduled", "amount": "1200"}}
    )
    record = api.crm.deals.basic_api.get_by_id(created.id, properties_with_history=["amount", "dealstage"])
    [amount] = record.properties_with_history["amount"]
    assert amount.value == "1200"
    assert amount.timestamp == record.created_at


def test_a_batch_read_with_history_takes_at_most_50_deals(api: HubSpot) -> None:
    """50 inputs are read; 51 get HubSpot's 400 for history reads (a plain batch read takes 100)."""
    ids = [str(i) for i in range(1, 61)]
    result = api.crm.deals.batch_api.read(_history_read(ids[:50], ["dealstage"]))
    assert len(result.results) == 50
    assert all("dealstage" in r.properties_with_history for r in result.results)
    with pytest.raises(ApiException) as refused:
        api.crm.deals.batch_api.read(_history_read(ids[:51], ["dealstage"]))
    assert refused.value.status == 400
    assert "maximum number of inputs supported in a batch request for property histories is 50" in str(
        refused.value.body
    )
    plain = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["dealstage"], properties_with_history=[]
    )
    assert len(api.crm.deals.batch_api.read(plain).results) == 60


def test_a_list_page_with_history_holds_at_most_50(api: HubSpot) -> None:
    """The SDK's get_all pages history reads at 50; a page of 51 with history is refused, without is fine."""
    assert len(api.crm.deals.get_all(properties_with_history=["dealstage"])) == 60
    with pytest.raises(ApiException) as refused:
        api.crm.deals.basic_api.get_page(limit=51, properties_with_history=["dealstage"])
    assert refused.value.status == 400
    assert len(api.crm.deals.basic_api.get_page(limit=60).results) == 60


def test_restore_brings_the_history_back(api: HubSpot, hs: HubSpotSandbox) -> None:
    hs.control.snapshot()
    api.crm.deals.basic_api.update("4", {"properties": {"amount": "999"}})
    hs.control.restore("default")
    record = api.crm.deals.basic_api.get_by_id("4", properties_with_history=["amount"])
    assert "999" not in [v.value for v in record.properties_with_history.get("amount", [])]


def test_without_dataset_history_a_value_holds_since_creation() -> None:
    """A portal seeded without histories: every set property has one version, at the deal's creation."""
    with running_hubspot_sandbox(seed=3, deals=5, now=NOW, rate_limits=RateLimitConfig.off()) as hs:
        api = HubSpot(access_token=hs.access_token, host=hs.base_url)
        names = ["dealstage", "dealname"]
        record = api.crm.deals.basic_api.get_by_id("1", properties=names, properties_with_history=names)
        for name in names:
            [version] = record.properties_with_history[name]
            assert version.value == record.properties[name]
            assert version.timestamp == record.created_at
