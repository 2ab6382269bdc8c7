"""The worker against the HubSpot sandbox through hubspot-api-client: the issue's "Done when" list."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from crm_sandbox.dataset import Archetype, generate

from tests.e2e.conftest import NOW, HubSpotWorld, task_keys

pytestmark = pytest.mark.slow


def our_tasks(world: HubSpotWorld) -> Counter[str]:
    return task_keys(world.sandbox)


def test_first_cycle_acts_on_the_seeded_archetypes(hubspot_world: HubSpotWorld) -> None:
    """A first cycle creates tasks, closes ghosting deals and enrols not-ready buyers in nurture."""
    result = hubspot_world.cycle()
    assert result.status == "ok"
    by_kind: Counter[str] = Counter()
    for (kind, _rule, status), n in result.actions.items():
        if status == "applied":
            by_kind[kind] += n
    assert by_kind["create_task"] > 0
    assert by_kind["change_stage"] > 0
    assert by_kind["enrol_in_nurture"] > 0
    created = our_tasks(hubspot_world)
    assert sum(created.values()) == by_kind["create_task"] == len(created)

    archetypes = {str(d.id): d.archetype for d in generate(7, 40, NOW).deals}
    store = hubspot_world.store()
    try:
        touched = {(archetypes[e.deal_id], e.kind) for e in store.ledger("demo") if e.status == "applied"}
    finally:
        store.close()
    assert (Archetype.GHOSTING_PROSPECT, "change_stage") in touched
    assert (Archetype.QUALIFIED_NOT_READY, "enrol_in_nurture") in touched
    assert (Archetype.MISSING_NEXT_STEP, "create_task") in touched


def test_second_cycle_without_changes_writes_nothing(hubspot_world: HubSpotWorld) -> None:
    """After a first cycle, a second one plans nothing new and sends no write to the CRM."""
    hubspot_world.cycle()
    before = hubspot_world.sandbox.control.stats()["endpoints"]
    second = hubspot_world.cycle()
    after = hubspot_world.sandbox.control.stats()["endpoints"]
    writes = [e for e in after if "batch/create" in e or "batch/update" in e or "memberships" in e]
    assert second.counts["new"] == 0
    assert {e: after[e] for e in writes} == {e: before.get(e, 0) for e in writes}
    assert max(our_tasks(hubspot_world).values()) == 1


def test_advancing_the_clock_fires_time_based_rules(hubspot_world: HubSpotWorld) -> None:
    """Three weeks later, with no CRM change, time-based rules act again (tasks fall due, deals expire)."""
    hubspot_world.cycle()
    hubspot_world.cycle()
    hubspot_world.advance(timedelta(days=21))
    later = hubspot_world.cycle()
    assert later.status == "ok"
    assert later.counts["new"] > 0
    assert later.counts["applied"] > 0
    assert max(our_tasks(hubspot_world).values()) == 1


def test_changes_in_the_crm_between_cycles_are_picked_up(hubspot_world: HubSpotWorld) -> None:
    """A deal a rep closes in HubSpot between cycles reaches the mirror and leaves it."""
    from hubspot import HubSpot
    from hubspot.crm.deals import SimplePublicObjectInput

    hubspot_world.cycle()
    store = hubspot_world.store()
    try:
        open_ids = sorted(store.mirror_deals("demo", [str(i) for i in range(1, 41)]))
        target = open_ids[0]
        api = HubSpot(access_token=hubspot_world.sandbox.access_token, host=hubspot_world.sandbox.base_url)
        deal = api.crm.deals.basic_api.get_by_id(target, properties=["pipeline"])
        lost = "closedlost" if deal.properties["pipeline"] == "default" else "enterpriselost"
        api.crm.deals.basic_api.update(target, SimplePublicObjectInput(properties={"dealstage": lost}))
        result = hubspot_world.cycle()
        assert result.counts["pulled"] >= 1
        mirrored = store.mirror_deals("demo", [target])
        assert target not in mirrored or mirrored[target].is_closed
    finally:
        store.close()
