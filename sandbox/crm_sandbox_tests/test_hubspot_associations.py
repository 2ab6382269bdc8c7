"""Associations v4: batch read with per-id paging, labelled and default create, archive, label definitions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
    PublicObjectId,
)
from hubspot.crm.associations.v4.schema import PublicAssociationDefinitionCreateRequest

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(
        seed=3, deals=40, now=NOW, rate_limits=RateLimitConfig.off(), association_page_size=2
    ) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _fetch(ids_and_cursors: list[tuple[str, str | None]]) -> BatchInputPublicFetchAssociationsBatchRequest:
    return BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=i, after=a) for i, a in ids_and_cursors]
    )


def _deal_with_many_contacts(hs: HubSpotSandbox, at_least: int) -> int:
    store = hs.portal.store
    for deal_id in store.tables["deals"].live:
        if len(store.live_targets("deals", "contacts", deal_id)) >= at_least:
            return deal_id
    raise AssertionError("the dataset has no deal with enough contacts")


def test_batch_read_pages_per_id_until_no_paging(api: HubSpot, hs: HubSpotSandbox) -> None:
    """A deal with more contacts than the page size is read in pages via paging.next.after, with no
    repeats."""
    deal_id = str(_deal_with_many_contacts(hs, 3))
    expected = sorted(hs.portal.store.live_targets("deals", "contacts", int(deal_id)))
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = api.crm.associations.v4.batch_api.get_page("deals", "contacts", _fetch([(deal_id, cursor)]))
        result = page.results[0]
        assert result._from.id == deal_id
        seen.extend(int(t.to_object_id) for t in result.to)
        if result.paging is None:
            break
        cursor = result.paging.next.after
    assert seen == expected


def test_batch_read_wire_shape_has_numeric_ids_and_labels(hs: HubSpotSandbox) -> None:
    """On the wire toObjectId is a number and each association type has category, typeId and label."""
    deal_id = _deal_with_many_contacts(hs, 1)
    response = requests.post(
        f"{hs.base_url}/crm/v4/associations/deals/contacts/batch/read",
        json={"inputs": [{"id": str(deal_id)}]},
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 200
    first = response.json()["results"][0]["to"][0]
    assert isinstance(first["toObjectId"], int)
    categories = {(t["category"], t["typeId"], t["label"]) for t in first["associationTypes"]}
    assert ("HUBSPOT_DEFINED", 3, None) in categories


def test_role_labels_are_user_defined_types(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Contact roles appear as USER_DEFINED deal->contact labels such as "Decision maker"."""
    deals = [str(i) for i in hs.portal.store.tables["deals"].live[:40]]
    page = api.crm.associations.v4.batch_api.get_page("deals", "contacts", _fetch([(d, None) for d in deals]))
    labels = {
        t.label
        for r in page.results
        for to in r.to
        for t in to.association_types
        if t.category == "USER_DEFINED"
    }
    assert labels
    assert labels <= {"Decision maker", "Economic buyer", "Champion", "Influencer", "Gatekeeper", "User"}


def test_batch_read_unknown_id_is_207_and_over_1000_is_400(hs: HubSpotSandbox) -> None:
    """An unknown from-id gives 207 OBJECT_NOT_FOUND; more than 1,000 inputs give 400."""
    url = f"{hs.base_url}/crm/v4/associations/deals/contacts/batch/read"
    auth = {"Authorization": f"Bearer {hs.access_token}"}
    partial = requests.post(url, json={"inputs": [{"id": "1"}, {"id": "987654"}]}, headers=auth, timeout=10)
    assert partial.status_code == 207
    assert partial.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    too_many = requests.post(
        url, json={"inputs": [{"id": str(i)} for i in range(1001)]}, headers=auth, timeout=10
    )
    assert too_many.status_code == 400


def test_create_with_label_is_201_and_reads_back(api: HubSpot, hs: HubSpotSandbox) -> None:
    """PUT with a USER_DEFINED type answers 201 with the labels, and the pair then reads back labelled."""
    label = next(
        t for t in hs.portal.store.associations.types_between("deals", "contacts") if t.label == "Champion"
    )
    linked = hs.portal.store.live_targets("deals", "contacts", 2)
    contact = next(c for c in hs.portal.store.tables["contacts"].live if c not in linked)
    result = api.crm.associations.v4.basic_api.create(
        "deals",
        "2",
        "contacts",
        str(contact),
        [AssociationSpec(association_category="USER_DEFINED", association_type_id=label.type_id)],
    )
    assert result.labels == ["Champion"]
    assert int(result.to_object_id) == contact
    page = api.crm.associations.v4.basic_api.get_page("deals", "2", "contacts", limit=500)
    types = {t.type_id for r in page.results if int(r.to_object_id) == contact for t in r.association_types}
    assert label.type_id in types


def test_create_default_and_archive(api: HubSpot, hs: HubSpotSandbox) -> None:
    """The default association answers 200 with both directions; DELETE removes the pair (204)."""
    result = api.crm.associations.v4.basic_api.create_default("deals", "3", "companies", "2")
    assert result.status == "COMPLETE"
    assert {r.association_spec.association_type_id for r in result.results} == {341, 342}
    assert 2 in hs.portal.store.live_targets("deals", "companies", 3)
    response = requests.delete(
        f"{hs.base_url}/crm/v4/objects/deals/3/associations/companies/2",
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 204
    assert 2 not in hs.portal.store.live_targets("deals", "companies", 3)
    assert 3 not in hs.portal.store.live_targets("companies", "deals", 2)


def test_batch_create_is_201_and_unknown_ids_207(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Batch create answers 201 for valid pairs and 207 when an object does not exist."""
    spec = [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=3)]
    good = BatchInputPublicAssociationMultiPost(
        inputs=[
            PublicAssociationMultiPost(_from=PublicObjectId(id="6"), to=PublicObjectId(id="7"), types=spec)
        ]
    )
    assert api.crm.associations.v4.batch_api.create("deals", "contacts", good).results[0].labels == []
    response = requests.post(
        f"{hs.base_url}/crm/v4/associations/deals/contacts/batch/create",
        json={
            "inputs": [
                {
                    "from": {"id": "6"},
                    "to": {"id": "99999"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
                }
            ]
        },
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 207


def test_wrong_type_id_is_400(hs: HubSpotSandbox) -> None:
    """An association type that does not join the two object types is rejected with 400."""
    response = requests.put(
        f"{hs.base_url}/crm/v4/objects/deals/2/associations/contacts/5",
        json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert json.loads(response.text)["category"] == "VALIDATION_ERROR"


def test_label_definitions_list_create_and_conflict(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Labels list the defaults and roles; a new label gets a USER_DEFINED type id; a duplicate is 409."""
    listed = api.crm.associations.v4.schema.definitions_api.get_all("deals", "contacts")
    assert {(r.category, r.type_id) for r in listed.results} >= {("HUBSPOT_DEFINED", 3)}
    created = api.crm.associations.v4.schema.definitions_api.create(
        "deals", "contacts", PublicAssociationDefinitionCreateRequest(label="Legal", name="legal")
    )
    assert created.results[0].category == "USER_DEFINED"
    again = requests.post(
        f"{hs.base_url}/crm/associations/v4/deals/contacts/labels",
        json={"label": "Legal", "name": "legal"},
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )
    assert again.status_code == 409
