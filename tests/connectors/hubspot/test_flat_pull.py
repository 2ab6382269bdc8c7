"""The HubSpot full pull streams: what it keeps between pages does not grow with the pages it has walked.

Against the in-process HubSpot sandbox through the official client (as test_on_sandbox.py): a portal whose
deals share contacts across the whole id range (a company's deals are anywhere in it), walked in many small
pages with a small contact cache. Pinned: the cache never holds more than its bound; the puller and its
aggregate builder keep the same after page N as after page 4N (counted, and measured as the objects the
pull keeps reachable);
and a contact let go and needed again is read again, giving the same aggregates as a pull that never let
any contact go.
"""

from __future__ import annotations

import gc
import os
import sys
import types
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest
from crm_sandbox.dataset import Dataset, generate
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.hubspot import HubSpotOptions, build_hubspot_connector
from connectors.hubspot.aggregate import AggregateBuilder, TasksRead, seen_with
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.contact_cache import ContactCache
from connectors.hubspot.fetch import Fetcher
from connectors.hubspot.pull import Puller
from policies.model import Activity, ActivityKind, Deal, Direction, Outcome
from tests.clocks import FakeTime

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PAGE = 10  # deals per page (ChangeBatch)
BOUND = 12  # contacts the cache may keep: fewer than one page's contacts
N = 4


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(17, 400, NOW)


@pytest.fixture(scope="module")
def portal(dataset: Dataset) -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(dataset=dataset, rate_limits=RateLimitConfig(enabled=False)) as hs:
        yield hs


def _connector(hs: HubSpotSandbox, cache_size: int) -> HubSpotConnector:
    os.environ["FLAT_PULL_HUBSPOT_TOKEN"] = hs.access_token
    options = HubSpotOptions.model_validate(
        {
            "host": hs.base_url,
            "access_token_env": "FLAT_PULL_HUBSPOT_TOKEN",
            "activity_lookback_days": 3650,
            "deals_per_batch": PAGE,
            "contact_cache_size": cache_size,
        }
    )
    return build_hubspot_connector(options, **FakeTime(NOW).clocks())


def _puller(connector: HubSpotConnector) -> tuple[Puller, AggregateBuilder]:
    fetcher = Fetcher(connector.client)
    builder = AggregateBuilder(fetcher, connector.options)
    return Puller(fetcher, builder, connector.options, now=lambda: NOW), builder


_SHARED = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


def retained(root: object) -> tuple[int, int]:
    """(objects, bytes) reachable from ``root``: what it keeps alive, code (modules, classes, functions)
    left out. Deterministic, unlike process memory: a pull generator reaches its frame's locals, the
    puller, the aggregate builder, the fetcher and the client."""
    gc.collect()
    seen: set[int] = set()
    stack = [root]
    count = size = 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _SHARED):
            continue
        seen.add(id(item))
        count += 1
        size += sys.getsizeof(item)
        stack.extend(gc.get_referents(item))
    return count, size


def test_shared_contacts_span_the_whole_pull(dataset: Dataset):
    """The premise: contacts shared by deals many pages apart, more contacts per page than the bound."""
    pages_of: dict[int, set[int]] = {}
    for index, deal in enumerate(sorted(dataset.deals, key=lambda d: d.id)):
        for link in deal.contacts:
            pages_of.setdefault(link.contact_id, set()).add(index // PAGE)
    far = [c for c, pages in pages_of.items() if max(pages) - min(pages) > 4 * N]
    assert len(far) >= 20
    per_page = Counter(p for pages in pages_of.values() for p in pages)
    assert min(per_page.values()) > BOUND


def test_memory_after_page_n_is_memory_after_page_4n(portal: HubSpotSandbox):
    connector = _connector(portal, BOUND)
    directory = connector.read_directory()
    puller, builder = _puller(connector)
    counts: dict[int, tuple[int, int, int]] = {}
    kept: dict[int, tuple[int, int]] = {}
    pages = puller.pull(directory, None)
    for number, batch in enumerate(pages, start=1):
        assert len(batch.deals) + len(batch.rejected) <= PAGE
        del batch
        cache = puller.cache
        assert cache is not None
        assert len(cache) <= BOUND  # never above its bound, after every page
        if number in (N, 4 * N):
            counts[number] = (len(cache), builder.tasks_read.size, len(builder.known_tasks))
            kept[number] = retained(pages)
    assert number >= 8 * N  # the pull went on well past page 4N
    assert counts[N] == counts[4 * N] == (BOUND, 1, 0)
    # the same bound of contacts and their engagements (which ones differs, so not to the byte): no growth
    # with the pages walked (measured 5,868 -> 6,227 objects, 965 -> 982 kB). Keeping every contact of
    # the pull, as before the bounded cache, grew 8,259 -> 17,045 objects, 1,140 -> 1,827 kB.
    (objects_n, bytes_n), (objects_4n, bytes_4n) = kept[N], kept[4 * N]
    assert objects_4n < 1.15 * objects_n
    assert bytes_4n < 1.15 * bytes_n


def _pull(hs: HubSpotSandbox, cache_size: int) -> tuple[dict[str, Deal], ContactCache]:
    connector = _connector(hs, cache_size)
    directory = connector.read_directory()
    puller, _ = _puller(connector)
    deals = {d.id: d for batch in puller.pull(directory, None) for d in batch.deals}
    assert puller.cache is not None
    return deals, puller.cache


def test_a_contact_let_go_and_needed_again_is_read_again(portal: HubSpotSandbox, dataset: Dataset):
    """With room for 2 contacts, a shared contact is let go before its next deal: it is read again (in the
    contact batch read, its engagement associations and its engagements), and the aggregates are the ones a
    pull that kept every contact builds: roles, and touches logged with the contact on its other deals.
    (What re-reads cost in calls at real sizes: bench/bench_hubspot_cache.py.)"""
    whole, whole_cache = _pull(portal, 1_000_000)
    tiny, tiny_cache = _pull(portal, 2)
    linked = {link.contact_id for deal in dataset.deals for link in deal.contacts}
    links = sum(len({link.contact_id for link in deal.contacts}) for deal in dataset.deals)
    assert whole_cache.reads == len(linked)  # each contact once
    assert len(linked) < tiny_cache.reads <= links  # once per page it is on: read again
    assert len(tiny_cache) <= 2
    assert tiny == whole
    shared = [c for c in linked if sum(c in {x.contact_id for x in d.contacts} for d in dataset.deals) > 1]
    assert any(
        str(c) in a.contact_ids for d in tiny.values() for a in d.activities for c in shared
    )  # touches through shared contacts are there


def test_the_cache_bound_is_validated():
    with pytest.raises(ValidationError, match="contact_cache_size"):
        HubSpotOptions.model_validate({"access_token_env": "X", "contact_cache_size": 0})


@given(
    activity=st.builds(
        Activity,
        id=st.text(min_size=1, max_size=5),
        kind=st.sampled_from(ActivityKind),
        direction=st.sampled_from(Direction),
        occurred_at=st.datetimes(timezones=st.just(UTC)),
        outcome=st.sampled_from(Outcome),
        contact_ids=st.tuples(st.text(max_size=3)),
        created_by_followup=st.booleans(),
    ),
    contact_ids=st.sets(st.text(max_size=3), min_size=1, max_size=4),
)
def test_an_activity_seen_from_a_deal_is_the_activity_with_that_deals_contacts(
    activity: Activity, contact_ids: set[str]
):
    """``seen_with`` (the hot path's copy) is ``dataclasses.replace``: every field of Activity carried."""
    assert [f.name for f in fields(Activity)] == [
        "id",
        "kind",
        "direction",
        "occurred_at",
        "outcome",
        "contact_ids",
        "created_by_followup",
    ]  # a new field must be added to seen_with too
    assert seen_with(activity, contact_ids) == replace(activity, contact_ids=tuple(sorted(contact_ids)))


@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("range"), st.integers(0, 60), st.integers(0, 60)),
            st.tuples(st.just("ids"), st.sets(st.integers(0, 70).map(str), max_size=4)),
        ),
        max_size=12,
    )
)
def test_the_deals_whose_tasks_were_read_are_what_was_added(
    steps: list[tuple[str, int, int] | tuple[str, set[str]]],
):
    """TasksRead (id ranges a full pull walked, single deals) answers like the set of every deal added,
    with one range per run of touching ranges."""
    read, model = TasksRead(), set[str]()
    for step in steps:
        match step:
            case ("range", int(after), int(last)):
                read.add_range(after, last)
                model.update(str(i) for i in range(after + 1, last + 1))
            case ("ids", set(ids)):
                read.update(ids)
                model.update(ids)
            case _:
                raise AssertionError(step)
    assert {str(i) for i in range(-1, 72) if str(i) in read} == model
    assert "x" not in read
    walked = TasksRead()
    for after in range(0, 10_000, 100):  # a full pull's batches
        walked.add_range(after, after + 100)
    assert walked.size == 1
