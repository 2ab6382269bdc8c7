"""Pipelines and stages, owners, properties and property groups as the SDK reads and creates them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.properties import (
    ApiException,
    BatchInputPropertyCreate,
    OptionInput,
    PropertyCreate,
    PropertyGroupCreate,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=9, deals=30, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def test_pipelines_have_string_stage_metadata(api: HubSpot) -> None:
    """Deal pipelines list every stage with metadata isClosed/probability as strings, won at 1.0 and lost at
    0.0."""
    pipelines = api.crm.pipelines.pipelines_api.get_all(object_type="deals").results
    assert len(pipelines) >= 2
    default = next(p for p in pipelines if p.id == "default")
    by_id = {s.id: s.metadata for s in default.stages}
    assert by_id["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert by_id["closedlost"] == {"isClosed": "true", "probability": "0.0"}
    assert by_id["appointmentscheduled"]["isClosed"] == "false"


def test_pipeline_by_id_and_stages(api: HubSpot) -> None:
    """A pipeline and its stages are readable one by one; an unknown pipeline is a 404."""
    stages = api.crm.pipelines.pipeline_stages_api.get_all(object_type="deals", pipeline_id="default").results
    one = api.crm.pipelines.pipeline_stages_api.get_by_id("deals", "default", stages[0].id)
    assert one.label == stages[0].label
    with pytest.raises(Exception) as caught:
        api.crm.pipelines.pipelines_api.get_by_id("deals", "no-such-pipeline")
    assert getattr(caught.value, "status", None) == 404


def test_owners_page_and_get_by_id(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Owners page with after/limit over GET /crm/v3/owners/ and are readable by id and by userId."""
    first = api.crm.owners.owners_api.get_page(limit=2)
    assert len(first.results) == 2
    rest = api.crm.owners.owners_api.get_page(limit=500, after=first.paging.next.after)
    ids = [o.id for o in first.results + rest.results]
    assert len(ids) == len(set(ids)) == len(hs.portal.store.owners)
    owner = api.crm.owners.owners_api.get_by_id(ids[0])
    assert owner.email
    by_user = api.crm.owners.owners_api.get_by_id(str(owner.user_id), id_property="userId")
    assert by_user.id == owner.id


def test_owner_limit_above_500_is_400(hs: HubSpotSandbox) -> None:
    """The owners endpoint caps limit at 500 with a VALIDATION_ERROR naming the limit."""
    response = requests.get(
        f"{hs.base_url}/crm/v3/owners/?limit=501",
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["context"]["limit"] == ["Must be less than or equal to 500"]


def test_custom_properties_exist_in_their_group(api: HubSpot) -> None:
    """The crm-followup deal properties exist in group crm_followup with their enumeration options."""
    prop = api.crm.properties.core_api.get_by_name("deals", "followup_state")
    assert prop.group_name == "crm_followup"
    assert [o.value for o in prop.options] == ["active", "nurture", "stopped"]
    names = {p.name for p in api.crm.properties.core_api.get_all("deals").results}
    assert {"dealname", "hs_next_step", "followup_next_step_date", "notes_next_activity_date"} <= names


def test_create_property_201_then_409(api: HubSpot) -> None:
    """A new property is created (201, usable in writes); the same name again is 409 CONFLICT."""
    create = PropertyCreate(
        name="followup_extra",
        label="Extra",
        type="enumeration",
        field_type="select",
        group_name="dealinformation",
        options=[OptionInput(label="A", value="a", display_order=0, hidden=False)],
    )
    created = api.crm.properties.core_api.create("deals", create)
    assert created.name == "followup_extra"
    with pytest.raises(ApiException) as caught:
        api.crm.properties.core_api.create("deals", create)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["category"] == "CONFLICT"


def test_group_create_and_batch_create_with_duplicate_is_207(api: HubSpot) -> None:
    """A bare portal gets the group (201) and a batch of properties; a batch with a duplicate answers 207."""
    api.crm.properties.groups_api.create("deals", PropertyGroupCreate(name="setup_group", label="Setup"))
    names = {g.name for g in api.crm.properties.groups_api.get_all("deals").results}
    assert "setup_group" in names
    batch = BatchInputPropertyCreate(
        inputs=[
            PropertyCreate(name=n, label=n, type="string", field_type="text", group_name="setup_group")
            for n in ("p_one", "p_two")
        ]
    )
    assert len(api.crm.properties.batch_api.create("deals", batch).results) == 2
    again = api.crm.properties.batch_api.create("deals", batch)
    assert again.num_errors == 2
    assert again.errors[0].category == "CONFLICT"


def test_bare_portal_has_no_followup_group() -> None:
    """With bare=True the crm_followup group and its properties are missing (404), ready for setup to
    create."""
    with running_hubspot_sandbox(
        seed=9, deals=5, now=NOW, bare=True, rate_limits=RateLimitConfig.off()
    ) as hs:
        url = f"{hs.base_url}/crm/v3/properties/deals/followup_state"
        response = requests.get(url, headers={"Authorization": f"Bearer {hs.access_token}"}, timeout=10)
        assert response.status_code == 404
        assert response.json()["category"] == "OBJECT_NOT_FOUND"
