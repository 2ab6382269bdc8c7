"""The dataset generator: determinism, archetype traits, referential integrity, time rules, files."""

from __future__ import annotations

import dataclasses
import pickle
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from crm_sandbox.archetypes import ARCHETYPE_WEIGHTS
from crm_sandbox.dataset import (
    ActivityKind,
    Archetype,
    Dataset,
    GenActivity,
    GenDeal,
    GenStage,
    generate,
    generate_or_load,
    load,
    save,
)
from crm_sandbox.names import VAGUE_NEXT_STEPS

NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)  # a Wednesday
FUTURE_OUTCOMES = {"scheduled", "not_started"}


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate(seed=42, deals=200, now=NOW)


@pytest.fixture(scope="module")
def medium() -> Dataset:
    return generate(seed=3, deals=2_000, now=NOW)


def _by_deal(dataset: Dataset) -> dict[int, list[GenActivity]]:
    grouped: dict[int, list[GenActivity]] = defaultdict(list)
    for activity in dataset.activities:
        grouped[activity.deal_id].append(activity)
    return grouped


def _deals(dataset: Dataset, archetype: Archetype) -> list[GenDeal]:
    return [deal for deal in dataset.deals if deal.archetype is archetype]


def _stage(dataset: Dataset, deal: GenDeal) -> GenStage:
    pipeline = next(p for p in dataset.pipelines if p.id == deal.pipeline_id)
    return next(s for s in pipeline.stages if s.id == deal.stage_id)


# --- determinism ----------------------------------------------------------------


def test_same_inputs_give_equal_datasets(small: Dataset) -> None:
    """Generating again with the same seed, size and now gives an equal dataset."""
    assert generate(seed=42, deals=200, now=NOW) == small


def test_other_seed_or_now_gives_another_dataset(small: Dataset) -> None:
    """A different seed changes the data; a different now moves the timestamps."""
    other_seed = generate(seed=43, deals=200, now=NOW)
    later = generate(seed=42, deals=200, now=NOW + timedelta(days=7))
    assert other_seed.deals != small.deals
    assert [d.archetype for d in later.deals] == [d.archetype for d in small.deals]
    assert later.deals[0].created_at != small.deals[0].created_at


def test_sizes_follow_the_documented_ratios(medium: Dataset) -> None:
    """One owner per 250 deals, a company per 3 deals, 1-4 contacts and ~10 activities per deal."""
    assert len(medium.owners) == 8
    assert len(medium.companies) == 667
    assert all(1 <= len(deal.contacts) <= 4 for deal in medium.deals)
    assert 8 <= len(medium.activities) / len(medium.deals) <= 13


def test_tiny_dataset_still_has_three_owners_in_different_time_zones() -> None:
    """Even a handful of deals gets the minimum of three owners, spread over time zones."""
    tiny = generate(seed=1, deals=5, now=NOW)
    assert len(tiny.owners) == 3
    assert len({owner.time_zone for owner in tiny.owners}) == 3
    assert len(tiny.deals) == 5


# --- archetypes -----------------------------------------------------------------


def test_every_archetype_appears_in_200_deals(small: Dataset) -> None:
    """A 200-deal dataset contains every archetype of its mix at least twice (the backtest stories only
    come with histories)."""
    counts = Counter(deal.archetype for deal in small.deals)
    assert set(counts) == {archetype for archetype, _ in ARCHETYPE_WEIGHTS}
    assert min(counts.values()) >= 2
    assert small.history == ()


def test_ghosting_prospects_have_many_outbound_touches_and_no_inbound(small: Dataset) -> None:
    """Ghosting deals have 10-40 outbound touches and not a single inbound activity or connected call."""
    activities = _by_deal(small)
    for deal in _deals(small, Archetype.GHOSTING_PROSPECT):
        history = activities[deal.id]
        touches = [a for a in history if a.kind in (ActivityKind.EMAIL, ActivityKind.CALL)]
        assert 10 <= len(touches) <= 40
        assert all(a.direction == "outbound" for a in history)
        assert not [a for a in history if a.outcome in ("connected", "replied", "completed")]


def test_call_me_in_two_weeks_has_a_recent_connected_call_and_an_agreed_interval(small: Dataset) -> None:
    """A 14-day call interval was agreed on a connected call a few days ago; the next step is ahead."""
    activities = _by_deal(small)
    for deal in _deals(small, Archetype.CALL_ME_IN_TWO_WEEKS):
        calls = [a for a in activities[deal.id] if a.kind is ActivityKind.CALL and a.outcome == "connected"]
        latest = max(call.occurred_at for call in calls)
        assert timedelta(days=1) < NOW - latest < timedelta(days=9)
        assert (deal.agreed_interval_days, deal.agreed_channel) == (14, "call")
        assert deal.next_step
        assert deal.next_step_date is not None
        assert deal.next_step_date > NOW.date()


def test_qualified_not_ready_has_high_score_and_not_now(small: Dataset) -> None:
    """Qualified-but-not-ready deals score at least 70 and say readiness not_now."""
    for deal in _deals(small, Archetype.QUALIFIED_NOT_READY):
        assert deal.qualification_score is not None
        assert deal.qualification_score >= 70
        assert deal.readiness == "not_now"


def test_gatekeeper_only_deals_are_large_late_and_reach_only_a_gatekeeper(small: Dataset) -> None:
    """Gatekeeper-only deals are >= 50,000, in a late open stage, with one gatekeeper and nobody else."""
    activities = _by_deal(small)
    for deal in _deals(small, Archetype.GATEKEEPER_ONLY):
        assert deal.amount is not None
        assert deal.amount >= 50_000
        stage = _stage(small, deal)
        assert not stage.is_closed
        assert stage.probability >= 0.5
        assert [link.role for link in deal.contacts] == ["gatekeeper"]
        assert {a.contact_id for a in activities[deal.id]} <= {deal.contacts[0].contact_id}


def test_tyre_kickers_are_unqualified(small: Dataset) -> None:
    """Tyre-kickers have no qualification score or one below 30."""
    for deal in _deals(small, Archetype.UNQUALIFIED_TYRE_KICKER):
        assert deal.qualification_score is None or deal.qualification_score < 30


def test_missing_and_vague_next_steps(small: Dataset) -> None:
    """Missing-next-step deals have no next step at all; vague ones carry a filler phrase."""
    for deal in _deals(small, Archetype.MISSING_NEXT_STEP):
        assert (deal.next_step, deal.next_step_why, deal.next_step_date) == (None, None, None)
    for deal in _deals(small, Archetype.VAGUE_NEXT_STEP):
        assert deal.next_step in VAGUE_NEXT_STEPS


def test_responsive_buyers_replied_this_week_and_have_a_next_step(small: Dataset) -> None:
    """Responsive buyers have an inbound reply in the last 8 days, readiness ready and a dated next step."""
    activities = _by_deal(small)
    for deal in _deals(small, Archetype.RESPONSIVE_BUYER):
        replies = [a.occurred_at for a in activities[deal.id] if a.direction == "inbound"]
        assert NOW - max(replies) < timedelta(days=8)
        assert deal.readiness == "ready"
        assert deal.next_step
        assert deal.next_step_why
        assert deal.next_step_date is not None


def test_recently_closed_deals(small: Dataset) -> None:
    """Won and lost deals closed within the last 30 days; lost ones say why."""
    for archetype, won in ((Archetype.RECENTLY_WON, True), (Archetype.RECENTLY_LOST, False)):
        for deal in _deals(small, archetype):
            stage = _stage(small, deal)
            assert stage.is_closed
            assert stage.is_won is won
            assert deal.close_date is not None
            assert timedelta(0) <= NOW.date() - deal.close_date <= timedelta(days=33)
            assert (deal.closed_lost_reason is not None) is (not won)


def test_pipelines_cover_every_stage(medium: Dataset) -> None:
    """The default pipeline has HubSpot's stage ids, the second a nurture stage; deals use every stage."""
    default, enterprise = medium.pipelines
    assert (default.id, enterprise.id) == ("default", "enterprise")
    assert [s.id for s in default.stages] == [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ]
    assert "nurture" in [s.id for s in enterprise.stages if not s.is_closed]
    used = {(deal.pipeline_id, deal.stage_id) for deal in medium.deals}
    assert used == {(p.id, s.id) for p in medium.pipelines for s in p.stages}
    labels = [s.label for p in medium.pipelines for s in p.stages]
    assert len(labels) == len(set(labels))


def test_contact_roles_cover_the_buying_committee(medium: Dataset) -> None:
    """Every role appears, and a contact appears on a deal at most once."""
    roles = Counter(link.role for deal in medium.deals for link in deal.contacts)
    assert set(roles) == {"decision_maker", "economic_buyer", "champion", "influencer", "gatekeeper", "user"}
    for deal in medium.deals:
        ids = [link.contact_id for link in deal.contacts]
        assert len(ids) == len(set(ids))
        assert [link.is_primary for link in deal.contacts].count(True) == 1


# --- integrity and time ---------------------------------------------------------


def test_every_referenced_id_exists(medium: Dataset) -> None:
    """Owners, companies, contacts, pipelines and stages referenced anywhere exist; ids are unique."""
    owners = {o.id for o in medium.owners}
    companies = {c.id: c for c in medium.companies}
    contacts = {c.id: c for c in medium.contacts}
    deals = {d.id: d for d in medium.deals}
    stages = {(p.id, s.id) for p in medium.pipelines for s in p.stages}
    assert len(owners) == len(medium.owners)
    assert len(contacts) == len(medium.contacts)
    assert len(deals) == len(medium.deals)
    assert len({a.id for a in medium.activities}) == len(medium.activities)
    assert all(c.owner_id in owners for c in medium.companies)
    assert all(c.company_id in companies for c in medium.contacts)
    for deal in medium.deals:
        assert deal.owner_id in owners
        assert deal.company_id in companies
        assert (deal.pipeline_id, deal.stage_id) in stages
        assert all(contacts[link.contact_id].company_id == deal.company_id for link in deal.contacts)
    for activity in medium.activities:
        deal = deals[activity.deal_id]
        assert activity.owner_id == deal.owner_id
        assert activity.contact_id is None or activity.contact_id in {
            link.contact_id for link in deal.contacts
        }


def test_timestamps_are_aware_and_in_the_past_except_booked_ones(medium: Dataset) -> None:
    """Datetimes are UTC-aware; only booked meetings and open tasks lie after now, none created then."""
    for deal in medium.deals:
        for stamp in (deal.created_at, deal.modified_at, deal.stage_entered_at):
            assert stamp.tzinfo is not None
            assert stamp < NOW
        assert deal.created_at <= deal.stage_entered_at <= deal.modified_at
    for contact in medium.contacts:
        assert contact.created_at <= contact.modified_at < NOW
    deals = {d.id: d for d in medium.deals}
    future = 0
    for activity in medium.activities:
        assert activity.occurred_at.utcoffset() == timedelta(0)
        assert activity.created_at is not None
        assert activity.modified_at is not None
        assert deals[activity.deal_id].created_at <= activity.created_at < NOW
        assert activity.created_at <= activity.modified_at < NOW
        if activity.occurred_at >= NOW:
            assert activity.outcome in FUTURE_OUTCOMES
            future += 1
    assert future > 0


def test_past_activities_fall_on_weekdays_in_owner_working_hours(medium: Dataset) -> None:
    """Activities happen Monday to Friday within the owner's working hours (UTC offset as at now)."""
    owners = {o.id: o for o in medium.owners}
    offsets = {o.id: NOW.astimezone(ZoneInfo(o.time_zone)).utcoffset() or timedelta(0) for o in medium.owners}
    for activity in medium.activities:
        owner = owners[activity.owner_id]
        local = (activity.occurred_at + offsets[owner.id]).replace(tzinfo=None)
        assert local.weekday() < 5
        assert owner.working_start <= local.strftime("%H:%M") <= owner.working_end


# --- files ----------------------------------------------------------------------


def test_save_and_load_round_trip(small: Dataset, tmp_path: Path) -> None:
    """A saved dataset loads back equal, with a readable summary beside it."""
    save(small, tmp_path / "ds")
    assert load(tmp_path / "ds") == small
    assert '"deals": 200' in (tmp_path / "ds" / "dataset.json").read_text()


def test_loaded_records_are_real_frozen_dataclasses(small: Dataset, tmp_path: Path) -> None:
    """Records built by the fast loader are instances of the dataset classes and stay immutable."""
    save(small, tmp_path)
    loaded = load(tmp_path)
    activity, deal = loaded.activities[0], loaded.deals[0]
    assert type(activity) is GenActivity
    assert type(deal) is GenDeal
    assert hash(activity) == hash(small.activities[0])
    for record in (activity, deal):  # every field, set the way mypy would refuse statically
        for field in dataclasses.fields(record):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(record, field.name, "changed")


def test_load_refuses_another_format(tmp_path: Path) -> None:
    """A file with an unknown format version is refused with ValueError, not misread."""
    (tmp_path / "dataset.pickle").write_bytes(pickle.dumps({"format": 999}))
    with pytest.raises(ValueError, match="format 999"):
        load(tmp_path)


def test_generate_or_load_reuses_the_saved_dataset(small: Dataset, tmp_path: Path) -> None:
    """The first call generates and saves; the second loads the same data from the cache directory."""
    first = generate_or_load(42, 200, NOW, tmp_path)
    saved = list(tmp_path.rglob("dataset.pickle"))
    mtime = saved[0].stat().st_mtime_ns
    second = generate_or_load(42, 200, NOW, tmp_path)
    assert first == second == small
    assert len(saved) == 1
    assert saved[0].stat().st_mtime_ns == mtime


def test_generate_rejects_naive_now() -> None:
    """A naive now is refused, because every generated timestamp must be timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(seed=1, deals=10, now=datetime(2026, 1, 1))
