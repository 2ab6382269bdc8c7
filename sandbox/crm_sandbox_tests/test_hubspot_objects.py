"""CRM objects v3 one at a time, through the unmodified hubspot-api-client and through raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.deals import ApiException, SimplePublicObjectInput, SimplePublicObjectInputForCreate
from hubspot.crm.deals.exceptions import NotFoundException, UnauthorizedException
from hubspot.crm.objects.tasks import AssociationSpec, PublicAssociationsForObject, PublicObjectId
from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate as TaskInput

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=7, deals=60, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _auth(hs: HubSpotSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {hs.access_token}"}


def test_get_page_pages_through_all_deals_in_id_order(api: HubSpot) -> None:
    """Following paging.next.after visits every deal once, in ascending id order, and the last page has no
    paging."""
    ids: list[int] = []
    after = None
    while True:
        page = api.crm.deals.basic_api.get_page(limit=25, after=after)
        ids.extend(int(d.id) for d in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) == 60


def test_requested_properties_are_strings_or_null(api: HubSpot) -> None:
    """Requested properties come back as strings, an unset one as null, and unknown names are left out."""
    deal = api.crm.deals.basic_api.get_by_id(
        "1", properties=["dealname", "amount", "hs_is_closed", "no_such_property", "hs_next_step"]
    )
    assert isinstance(deal.properties["dealname"], str)
    assert deal.properties["hs_is_closed"] in ("true", "false")
    assert "no_such_property" not in deal.properties
    assert "hs_next_step" in deal.properties


def test_default_properties_when_none_requested(hs: HubSpotSandbox) -> None:
    """Without `properties` a deal read returns HubSpot's default deal properties."""
    body = requests.get(f"{hs.base_url}/crm/v3/objects/deals/1", headers=_auth(hs), timeout=10).json()
    assert set(body["properties"]) == {
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    }
    assert body["createdAt"].endswith("Z")
    assert len(body["createdAt"]) == len("2019-10-30T03:30:17.883Z")


def test_comma_separated_properties_and_associations(hs: HubSpotSandbox) -> None:
    """The comma-separated form of properties and associations is accepted as the docs allow."""
    url = f"{hs.base_url}/crm/v3/objects/deals/1?properties=dealname,pipeline&associations=contacts,companies"
    body = requests.get(url, headers=_auth(hs), timeout=10).json()
    assert set(body["properties"]) >= {"dealname", "pipeline"}
    assert "companies" in body["associations"]


def test_get_unknown_deal_is_404_with_hubspot_body(api: HubSpot) -> None:
    """A missing id raises the SDK's NotFoundException carrying HubSpot's OBJECT_NOT_FOUND body."""
    with pytest.raises(NotFoundException) as caught:
        api.crm.deals.basic_api.get_by_id("999999")
    body = json.loads(caught.value.body)
    assert body["status"] == "error"
    assert body["category"] == "OBJECT_NOT_FOUND"
    assert body["correlationId"]


def test_wrong_token_is_401(hs: HubSpotSandbox) -> None:
    """An unknown Bearer token gets 401 INVALID_AUTHENTICATION, which the SDK maps to
    UnauthorizedException."""
    api = HubSpot(access_token="pat-na1-wrong", host=hs.base_url)
    with pytest.raises(UnauthorizedException) as caught:
        api.crm.deals.basic_api.get_page(limit=1)
    assert json.loads(caught.value.body)["category"] == "INVALID_AUTHENTICATION"
    missing = requests.get(f"{hs.base_url}/crm/v3/objects/deals", timeout=10)
    assert missing.status_code == 401


def test_create_answers_201_and_the_record_reads_back(api: HubSpot) -> None:
    """Creating a deal returns 201 (so the SDK returns the object) and the stored values read back."""
    created = api.crm.deals.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "dealname": "New deal",
                "amount": "1200.50",
                "dealstage": "appointmentscheduled",
                "followup_next_step_date": "2026-04-01",
                "closedate": "2026-05-01T00:00:00Z",
            }
        )
    )
    assert created is not None
    again = api.crm.deals.basic_api.get_by_id(
        created.id, properties=["dealname", "amount", "pipeline", "followup_next_step_date", "closedate"]
    )
    assert again.properties["dealname"] == "New deal"
    assert again.properties["amount"] == "1200.5"
    assert again.properties["pipeline"] == "default"
    assert again.properties["followup_next_step_date"] == "2026-04-01"
    assert again.properties["closedate"] == "2026-05-01T00:00:00.000Z"


def test_update_bumps_lastmodified_and_empty_string_clears(api: HubSpot, hs: HubSpotSandbox) -> None:
    """PATCH changes the value, bumps hs_lastmodifieddate to the sandbox clock, and "" clears a property."""
    before = api.crm.deals.basic_api.get_by_id("2", properties=["hs_lastmodifieddate"])
    updated = api.crm.deals.basic_api.update(
        "2", SimplePublicObjectInput(properties={"hs_next_step": "Send pricing", "closed_lost_reason": ""})
    )
    assert updated.properties["hs_next_step"] == "Send pricing"
    after = api.crm.deals.basic_api.get_by_id("2", properties=["hs_lastmodifieddate", "closed_lost_reason"])
    assert after.properties["hs_lastmodifieddate"] > before.properties["hs_lastmodifieddate"]
    assert after.properties["closed_lost_reason"] is None


def test_stage_change_recomputes_closed_flags(api: HubSpot) -> None:
    """Moving a deal to closedlost sets the read-only hs_is_closed / hs_is_closed_won from the stage
    metadata."""
    api.crm.deals.basic_api.update(
        "3", SimplePublicObjectInput(properties={"dealstage": "closedlost", "pipeline": "default"})
    )
    deal = api.crm.deals.basic_api.get_by_id(
        "3", properties=["hs_is_closed", "hs_is_closed_won", "hs_date_entered_closedlost"]
    )
    assert deal.properties["hs_is_closed"] == "true"
    assert deal.properties["hs_is_closed_won"] == "false"
    assert deal.properties["hs_date_entered_closedlost"] is not None


def test_invalid_values_are_400_listing_each_problem(api: HubSpot) -> None:
    """Unknown properties, bad options and non-midnight dates are rejected with VALIDATION_ERROR naming
    each."""
    with pytest.raises(ApiException) as caught:
        api.crm.deals.basic_api.update(
            "1",
            SimplePublicObjectInput(
                properties={
                    "nope": "x",
                    "followup_readiness": "maybe",
                    "followup_next_step_date": "1714594735865",
                }
            ),
        )
    assert caught.value.status == 400
    body = json.loads(caught.value.body)
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]
    assert "INVALID_OPTION" in body["message"]
    assert "not midnight" in body["message"]


def test_bare_portal_lacks_custom_properties() -> None:
    """With bare=True the crm_followup properties do not exist, so writing one is a 400."""
    with running_hubspot_sandbox(
        seed=7, deals=10, now=NOW, bare=True, rate_limits=RateLimitConfig.off()
    ) as bare:
        api = HubSpot(access_token=bare.access_token, host=bare.base_url)
        with pytest.raises(ApiException) as caught:
            api.crm.deals.basic_api.update(
                "1", SimplePublicObjectInput(properties={"followup_state": "active"})
            )
        assert caught.value.status == 400


def test_archive_is_204_and_archived_listing_shows_it(api: HubSpot, hs: HubSpotSandbox) -> None:
    """DELETE answers 204; the deal then 404s normally and is listed only with archived=true, with
    archivedAt."""
    before = api.crm.deals.basic_api.get_by_id("5", properties=["hs_lastmodifieddate"])
    response = requests.delete(f"{hs.base_url}/crm/v3/objects/deals/5", headers=_auth(hs), timeout=10)
    assert response.status_code == 204
    with pytest.raises(NotFoundException):
        api.crm.deals.basic_api.get_by_id("5")
    archived = api.crm.deals.basic_api.get_page(archived=True, properties=["hs_lastmodifieddate"])
    assert [d.id for d in archived.results] == ["5"]
    assert archived.results[0].archived_at is not None
    assert archived.results[0].properties["hs_lastmodifieddate"] == before.properties["hs_lastmodifieddate"]
    live_ids = {d.id for d in api.crm.deals.get_all()}
    assert "5" not in live_ids


def test_task_created_on_deal_appears_in_associations_and_rollups(api: HubSpot) -> None:
    """A task created with association type 216 is linked to the deal and moves its
    notes_next_activity_date."""
    due = "2026-03-10T09:00:00.000Z"
    task = api.crm.objects.tasks.basic_api.create(
        TaskInput(
            properties={"hs_timestamp": due, "hs_task_subject": "Follow up", "hs_task_status": "NOT_STARTED"},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id="4"),
                    types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=216)],
                )
            ],
        )
    )
    deal = api.crm.deals.basic_api.get_by_id(
        "4", associations=["tasks"], properties=["notes_next_activity_date"]
    )
    assert task.id in {a.id for a in deal.associations["tasks"].results}
    assert deal.properties["notes_next_activity_date"] is not None
    assert deal.properties["notes_next_activity_date"] <= due


def test_engagement_create_requires_hs_timestamp(api: HubSpot) -> None:
    """Creating a task without hs_timestamp is a 400, as HubSpot requires it on every engagement."""
    with pytest.raises(Exception) as caught:
        api.crm.objects.tasks.basic_api.create(TaskInput(properties={"hs_task_subject": "No date"}))
    assert getattr(caught.value, "status", None) == 400


def test_generic_objects_api_and_type_id_alias(hs: HubSpotSandbox, api: HubSpot) -> None:
    """The generic objects API reaches calls, and /crm/v3/objects/0-3 is the same collection as deals."""
    calls = api.crm.objects.basic_api.get_page(
        "calls", limit=5, properties=["hs_call_direction", "hs_call_disposition"]
    )
    assert calls.results
    assert calls.results[0].properties["hs_call_direction"] in ("INBOUND", "OUTBOUND")
    by_id = requests.get(f"{hs.base_url}/crm/v3/objects/0-3/7", headers=_auth(hs), timeout=10).json()
    assert by_id["id"] == "7"


def test_list_limit_above_100_is_400(hs: HubSpotSandbox) -> None:
    """The v3 list endpoint caps limit at 100 and answers 400 beyond."""
    response = requests.get(f"{hs.base_url}/crm/v3/objects/deals?limit=101", headers=_auth(hs), timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")


def test_unknown_owner_and_stage_are_rejected(api: HubSpot) -> None:
    """hubspot_owner_id must name an owner and dealstage a stage of the portal's pipelines."""
    for props, code in (
        ({"hubspot_owner_id": "999999"}, "INVALID_OWNER_ID"),
        ({"dealstage": "nowhere"}, "INVALID_OPTION"),
    ):
        with pytest.raises(ApiException) as caught:
            api.crm.deals.basic_api.update("1", SimplePublicObjectInput(properties=props))
        assert caught.value.status == 400
        assert code in json.loads(caught.value.body)["message"]


@pytest.mark.parametrize("value", ["1e400", "NaN", "Infinity", "4,68", "1.2.3", "--5"])
def test_number_properties_take_only_digits_a_sign_and_a_point(api: HubSpot, value: str) -> None:
    """HubSpot's API refuses exponents, NaN, commas and second points in numbers (400 INVALID_FLOAT)."""
    with pytest.raises(ApiException) as caught:
        api.crm.deals.basic_api.update("1", SimplePublicObjectInput(properties={"amount": value}))
    assert caught.value.status == 400
    assert "INVALID_FLOAT" in json.loads(caught.value.body)["message"]


def test_numbers_of_any_size_are_accepted_and_read_back_as_written(api: HubSpot) -> None:
    """A 401-digit amount or a negative interval is accepted (the connector, not the CRM, bounds them)."""
    huge = "1" + "0" * 400
    api.crm.deals.basic_api.update(
        "1", SimplePublicObjectInput(properties={"amount": huge, "followup_agreed_interval_days": "-5"})
    )
    deal = api.crm.deals.basic_api.get_by_id("1", properties=["amount", "followup_agreed_interval_days"])
    assert deal.properties["amount"] == huge
    assert deal.properties["followup_agreed_interval_days"] == "-5"


def test_reads_carry_the_id_and_the_stamps_beside_the_properties_asked_for(
    api: HubSpot, hs: HubSpotSandbox
) -> None:
    """As HubSpot's own example shows (a read with ``properties=owner`` answers ``hs_object_id`` and the
    create and modification dates too), every object read adds them: by id, a list page and a batch read,
    for deals and for engagements (``hs_createdate``)."""
    system = {"hs_object_id", "createdate", "hs_lastmodifieddate"}
    deal = api.crm.deals.basic_api.get_by_id("1", properties=["dealname"])
    assert set(deal.properties) == {"dealname", *system}
    assert deal.properties["hs_object_id"] == "1"
    page = api.crm.deals.basic_api.get_page(limit=2, properties=["dealstage"])
    assert all(set(d.properties) == {"dealstage", *system} for d in page.results)
    batch = requests.post(
        f"{hs.base_url}/crm/v3/objects/deals/batch/read",
        json={"inputs": [{"id": "1"}, {"id": "2"}], "properties": ["amount"]},
        headers=_auth(hs),
        timeout=10,
    ).json()
    assert [set(r["properties"]) for r in batch["results"]] == [{"amount", *system}] * 2
    calls = requests.get(
        f"{hs.base_url}/crm/v3/objects/calls",
        params={"limit": "1", "properties": "hs_call_direction"},
        headers=_auth(hs),
        timeout=10,
    ).json()
    assert set(calls["results"][0]["properties"]) == {
        "hs_call_direction",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }


def test_the_next_page_link_is_a_full_url_that_reads_the_next_page(hs: HubSpotSandbox) -> None:
    """``paging.next.link`` is the request's own URL with the next ``after`` (as in HubSpot's examples,
    ``https://api.hubapi.com/crm/v3/objects/2-3465404?limit=2&after=…``); following it reads the next page."""
    first = requests.get(
        f"{hs.base_url}/crm/v3/objects/deals",
        params={"limit": "5", "properties": "dealname"},
        headers=_auth(hs),
        timeout=10,
    ).json()
    following = first["paging"]["next"]
    assert following["link"] == (
        f"{hs.base_url}/crm/v3/objects/deals?limit=5&properties=dealname&after={following['after']}"
    )
    second = requests.get(following["link"], headers=_auth(hs), timeout=10).json()
    assert int(second["results"][0]["id"]) > int(first["results"][-1]["id"])
    assert set(second["results"][0]["properties"]) >= {"dealname"}
