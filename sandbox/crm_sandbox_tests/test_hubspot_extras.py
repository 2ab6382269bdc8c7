"""The less travelled endpoints: association batch default/archive/labels, list housekeeping, schema reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicDefaultAssociationMultiPost,
    PublicAssociationMultiArchive,
    PublicDefaultAssociationMultiPost,
    PublicObjectId,
)
from hubspot.crm.lists import ListCreateRequest

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def hs() -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(seed=6, deals=25, now=NOW, rate_limits=RateLimitConfig.off()) as sandbox:
        yield sandbox


@pytest.fixture
def api(hs: HubSpotSandbox) -> HubSpot:
    return HubSpot(access_token=hs.access_token, host=hs.base_url)


def _call(hs: HubSpotSandbox, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        hs.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {hs.access_token}"},
        timeout=10,
    )


def test_batch_default_then_batch_archive(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Batch associate/default links pairs (200, both directions); batch archive unlinks them (204)."""
    v4 = api.crm.associations.v4.batch_api
    pair = PublicDefaultAssociationMultiPost(_from=PublicObjectId(id="4"), to=PublicObjectId(id="3"))
    created = v4.create_default(
        "deals", "companies", BatchInputPublicDefaultAssociationMultiPost(inputs=[pair])
    )
    assert created.status == "COMPLETE"
    assert 3 in hs.portal.store.live_targets("deals", "companies", 4)
    archive = PublicAssociationMultiArchive(_from=PublicObjectId(id="4"), to=[PublicObjectId(id="3")])
    v4.archive("deals", "companies", BatchInputPublicAssociationMultiArchive(inputs=[archive]))
    assert 3 not in hs.portal.store.live_targets("deals", "companies", 4)


def test_batch_labels_archive_keeps_the_unlabeled_association(hs: HubSpotSandbox) -> None:
    """Archiving only a label leaves the pair associated by its default type."""
    store = hs.portal.store
    deal_id, contact_id, types = next(
        (d, c, t)
        for d in store.tables["deals"].live
        for c, t in store.live_targets("deals", "contacts", d).items()
        if len(t) > 1
    )
    label = next(t for t in types if t != 3)
    spec = {"associationCategory": "USER_DEFINED", "associationTypeId": label}
    body = {"inputs": [{"from": {"id": str(deal_id)}, "to": {"id": str(contact_id)}, "types": [spec]}]}
    assert (
        _call(hs, "POST", "/crm/v4/associations/deals/contacts/batch/labels/archive", body).status_code == 204
    )
    assert store.live_targets("deals", "contacts", deal_id)[contact_id] == (3,)


def test_label_update_and_delete(hs: HubSpotSandbox) -> None:
    """A USER_DEFINED label can be renamed (PUT) and deleted (204); a HubSpot-defined type cannot (404)."""
    created = _call(
        hs, "POST", "/crm/v4/associations/deals/contacts/labels", {"label": "Legal", "name": "legal"}
    )
    type_id = created.json()["results"][0]["typeId"]
    renamed = _call(
        hs,
        "PUT",
        "/crm/v4/associations/deals/contacts/labels",
        {"associationTypeId": type_id, "label": "Counsel"},
    )
    assert renamed.status_code == 204
    labels = {
        r["label"] for r in _call(hs, "GET", "/crm/v4/associations/deals/contacts/labels").json()["results"]
    }
    assert "Counsel" in labels
    assert _call(hs, "DELETE", f"/crm/v4/associations/deals/contacts/labels/{type_id}").status_code == 204
    assert _call(hs, "DELETE", "/crm/v4/associations/deals/contacts/labels/3").status_code == 404


def test_list_housekeeping(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Lists by ids, record memberships, join order, remove-all, delete and restore behave as documented."""
    list_id = api.crm.lists.lists_api.create(
        ListCreateRequest(name="Nurture", object_type_id="0-1", processing_type="MANUAL")
    ).list.list_id
    api.crm.lists.memberships_api.add(list_id, ["3", "1"])
    by_ids = api.crm.lists.lists_api.get_all(list_ids=[list_id])
    assert [found.list_id for found in by_ids.lists] == [list_id]
    joined = api.crm.lists.memberships_api.get_page_ordered_by_added_to_list_date(list_id)
    assert [m.record_id for m in joined.results] == ["3", "1"]
    of_record = api.crm.lists.memberships_api.get_lists("0-1", "3")
    assert [m.list_id for m in of_record.results] == [list_id]
    assert _call(hs, "DELETE", f"/crm/v3/lists/{list_id}/memberships").status_code == 204
    assert api.crm.lists.memberships_api.get_page(list_id).results == []
    assert _call(hs, "DELETE", f"/crm/v3/lists/{list_id}").status_code == 204
    assert api.crm.lists.lists_api.get_all(list_ids=[list_id]).lists == []
    assert _call(hs, "PUT", f"/crm/v3/lists/{list_id}/restore").status_code == 204
    assert api.crm.lists.lists_api.get_by_id(list_id).list.deleted_at is None


def test_dynamic_lists_refuse_membership_writes(hs: HubSpotSandbox) -> None:
    """Membership changes on a DYNAMIC list are a 400, since its members come from filters."""
    created = _call(
        hs, "POST", "/crm/v3/lists/", {"name": "Dyn", "objectTypeId": "0-1", "processingType": "DYNAMIC"}
    )
    list_id = created.json()["list"]["listId"]
    assert _call(hs, "PUT", f"/crm/v3/lists/{list_id}/memberships/add", ["1"]).status_code == 400


def test_schema_reads(api: HubSpot, hs: HubSpotSandbox) -> None:
    """Property batch read, group by name and pipeline by id answer with the definitions."""
    read = _call(
        hs, "POST", "/crm/v3/properties/deals/batch/read", {"inputs": [{"name": "dealname"}, {"name": "x"}]}
    )
    assert [p["name"] for p in read.json()["results"]] == ["dealname"]
    group = api.crm.properties.groups_api.get_by_name("deals", "crm_followup")
    assert group.name == "crm_followup"
    pipeline = api.crm.pipelines.pipelines_api.get_by_id("deals", "default")
    assert pipeline.stages[0].metadata["isClosed"] in ("true", "false")
    stage_options = api.crm.properties.core_api.get_by_name("deals", "dealstage").options
    assert {o.value for o in stage_options} >= {"closedwon", "closedlost"}


def test_properties_with_history_and_archived_read(api: HubSpot, hs: HubSpotSandbox) -> None:
    """propertiesWithHistory carries the current value; an archived deal still reads with archived=true."""
    deal = api.crm.deals.basic_api.get_by_id("2", properties_with_history=["dealname"])
    history = deal.properties_with_history["dealname"]
    assert history[0].value
    assert history[0].timestamp is not None
    assert _call(hs, "DELETE", "/crm/v3/objects/deals/2").status_code == 204
    archived = api.crm.deals.basic_api.get_by_id("2", archived=True)
    assert archived.archived is True


def test_contacts_search_by_hs_lastmodifieddate_finds_nothing(hs: HubSpotSandbox) -> None:
    """Contacts are stamped in lastmodifieddate; searching them by hs_lastmodifieddate finds none."""
    window = {"operator": "GTE", "value": "0"}
    by_hs = {"filterGroups": [{"filters": [{**window, "propertyName": "hs_lastmodifieddate"}]}]}
    by_plain = {"filterGroups": [{"filters": [{**window, "propertyName": "lastmodifieddate"}]}]}
    assert _call(hs, "POST", "/crm/v3/objects/contacts/search", by_hs).json()["total"] == 0
    assert _call(hs, "POST", "/crm/v3/objects/contacts/search", by_plain).json()["total"] > 0


def test_wrongly_shaped_bodies_are_400_not_500(hs: HubSpotSandbox) -> None:
    """Inputs of the wrong type get HubSpot's 400 VALIDATION_ERROR, never a server error."""
    for path, body in (
        ("/crm/v4/associations/deals/contacts/batch/create", {"inputs": [1, 2]}),
        ("/crm/v3/objects/deals/batch/update", {"inputs": [{"id": "1", "properties": 5}]}),
        ("/crm/v3/objects/deals/search", {"filterGroups": [{"filters": [5]}]}),
    ):
        response = _call(hs, "POST", path, body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["category"] == "VALIDATION_ERROR"
