"""The engine behind ``crm_sandbox.dataset.generate``: owners, companies, contacts, deals, activities.

Call ``crm_sandbox.dataset.generate(seed, deals, now)``, not this module directly. How it works:

1. One ``random.Random(seed)`` drives everything, in a fixed order (owners, companies, then deal by deal),
   never the global RNG and never iteration over sets, so the output depends only on (seed, deals, now).
2. Each deal draws an archetype (weights in sandbox/archetypes.py), a company, an owner (mostly the
   company's), its contact roles, and a ``Story`` in relative days. Contacts come from the company's pool:
   a role already present there is reused half the time, so companies with several deals share people.
3. Relative days become timestamps inside the owner's working hours (sandbox/workhours.py; offset as at
   ``now``), moved off weekends, and strictly before ``now`` for anything that already happened. Booked
   meetings, open tasks, next-step dates and open deals' close dates may lie in the future.

Speed matters (100,000 deals and ~1,000,000 activities in well under a minute): the per-activity work is a
few random draws, integer arithmetic on epoch seconds and one ``datetime.fromtimestamp``.
"""

from __future__ import annotations

import bisect
import functools
import gc
import itertools
import random
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

from crm_sandbox.archetypes import (
    ARCHETYPE_WEIGHTS,
    EXTRA_ROLES,
    HISTORY_ARCHETYPE_WEIGHTS,
    ROLES_BY_ARCHETYPE,
    STORIES,
    Story,
)
from crm_sandbox.dataset import (
    Archetype,
    Dataset,
    GenActivity,
    GenCompany,
    GenContact,
    GenDeal,
    GenDealContact,
    GenFieldChange,
    GenOwner,
)
from crm_sandbox.histories import deal_history
from crm_sandbox.names import (
    COMPANY_PREFIXES,
    COMPANY_SUFFIXES,
    COUNTRIES,
    COUNTRY_WEIGHTS,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    OWNER_REGIONS,
    TITLES_BY_ROLE,
)
from crm_sandbox.pipelines import PIPELINES, stage_for_level
from crm_sandbox.workhours import WorkingHoursClock

__all__ = ["GENERATOR_VERSION", "generate_dataset", "paused_gc"]

GENERATOR_VERSION = "2"  # bump whenever the output for a given (seed, deals, now) changes
_LEGAL_FORMS = {
    "US": "Inc.",
    "US-W": "Inc.",
    "DE": "GmbH",
    "SE": "AB",
    "GB": "Ltd",
    "SG": "Pte. Ltd.",
    "NL": "B.V.",
    "AU": "Pty Ltd",
}
_PRODUCTS = (
    "Fleet Routing",
    "Warehouse Suite",
    "Analytics add-on",
    "Pilot",
    "Expansion",
    "Platform licence",
    "Dispatch Planner",
    "Renewal",
    "Integration package",
)
_ENTERPRISE_SHARE = 0.3


@functools.cache  # names come from small pools: fold each once, not once per contact
def _ascii(text: str) -> str:
    """``text`` as lowercase ASCII letters and digits, for emails and domains ("Björn" -> "bjorn")."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _stamp(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _owners(rng: random.Random, count: int) -> tuple[GenOwner, ...]:
    regions = [region for region in OWNER_REGIONS for _ in range(region[4])]
    owners, seen = [], dict[str, int]()
    for owner_id in range(1, count + 1):
        # Round-robin over the weighted regions first, so even the minimum of 3 owners spans time zones.
        team, tz, start, end, _ = (
            regions[(owner_id - 1) * 5 % len(regions)] if owner_id <= 6 else rng.choice(regions)
        )
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{_ascii(first)}.{_ascii(last)}"
        seen[local] = seen.get(local, 0) + 1
        suffix = "" if seen[local] == 1 else str(seen[local])
        owners.append(
            GenOwner(owner_id, first, last, f"{local}{suffix}@sandbox-sales.example", tz, start, end, team)
        )
    return tuple(owners)


def _companies(rng: random.Random, count: int, owners: int) -> tuple[tuple[GenCompany, ...], list[str]]:
    """The companies, and each one's key into ``COUNTRIES`` (which tells US East from US West)."""
    countries = [code for code, weight in COUNTRY_WEIGHTS for _ in range(weight)]
    companies, keys, domains = [], [], dict[str, int]()
    for company_id in range(1, count + 1):
        prefix, suffix, country = (
            rng.choice(COMPANY_PREFIXES),
            rng.choice(COMPANY_SUFFIXES),
            rng.choice(countries),
        )
        stem = _ascii(prefix + suffix)
        domains[stem] = domains.get(stem, 0) + 1
        taken = domains[stem]
        domain = f"{stem}{'' if taken == 1 else taken}.{COUNTRIES[country][1]}"
        companies.append(
            GenCompany(
                company_id,
                f"{prefix} {suffix} {_LEGAL_FORMS[country]}",
                domain,
                rng.choice(INDUSTRIES),
                country[:2],
                rng.randint(1, owners),
            )
        )
        keys.append(country)
    return tuple(companies), keys


class _ContactPool:
    """Contacts per company, created on demand and shared between the company's deals."""

    def __init__(
        self, rng: random.Random, companies: tuple[GenCompany, ...], country_keys: list[str]
    ) -> None:
        self.rng = rng
        self.companies = companies
        self.country_keys = country_keys
        self.by_company: dict[int, list[int]] = {}
        # per contact: [first, last, email, phone, company id, title, tz, role, oldest deal age, newest touch]
        self.rows: list[list[object]] = []
        self.emails: dict[str, int] = {}

    def pick(self, company_id: int, role: str, taken: list[int], age: int) -> int:
        """A contact id at ``company_id`` with ``role``, reused from the pool or new, not in ``taken``."""
        rng, pool = self.rng, self.by_company.setdefault(company_id, [])
        candidates = [cid for cid in pool if self.rows[cid - 1][7] == role and cid not in taken]
        if candidates and rng.random() < 0.5:
            contact_id = rng.choice(candidates)
            row = self.rows[contact_id - 1]
            row[8] = max(int(str(row[8])), age)
            return contact_id
        company = self.companies[company_id - 1]
        tz, _, _, phone_prefix = COUNTRIES[self.country_keys[company_id - 1]]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{_ascii(first)}.{_ascii(last)}"
        key = f"{local}@{company.domain}"
        self.emails[key] = self.emails.get(key, 0) + 1
        email = key if self.emails[key] == 1 else f"{local}{self.emails[key]}@{company.domain}"
        phone = f"{phone_prefix} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        self.rows.append(
            [first, last, email, phone, company_id, rng.choice(TITLES_BY_ROLE[role]), tz, role, age, None]
        )
        contact_id = len(self.rows)
        pool.append(contact_id)
        return contact_id

    def touch(self, contact_id: int, day: int) -> None:
        row = self.rows[contact_id - 1]
        if day >= 0 and (row[9] is None or day < int(str(row[9]))):
            row[9] = day

    def freeze(self, clock: WorkingHoursClock, owner_of_company: dict[int, int]) -> tuple[GenContact, ...]:
        contacts = []
        for contact_id, row in enumerate(self.rows, start=1):
            first, last, email, phone, company_id, title, tz, _, oldest, touched = row
            owner_id = owner_of_company[int(str(company_id))]
            created = _stamp(clock.at(int(str(oldest)) + self.rng.randint(1, 30), owner_id))
            modified = created if touched is None else _stamp(clock.at(int(str(touched)), owner_id))
            contacts.append(
                GenContact(
                    contact_id,
                    str(first),
                    str(last),
                    str(email),
                    str(phone),
                    int(str(company_id)),
                    str(title),
                    str(tz),
                    created,
                    max(created, modified),
                )
            )
        return tuple(contacts)


def _amount(rng: random.Random, archetype: Archetype, pipeline_id: str, story: Story) -> float | None:
    if archetype is Archetype.UNQUALIFIED_TYRE_KICKER and rng.random() < 0.4:
        return None
    if rng.random() < 0.03 and story.min_amount is None:  # reps leave a few amounts empty
        return None
    median = 80_000.0 if pipeline_id != "default" else 15_000.0
    amount = round(rng.lognormvariate(0.0, 0.7) * median / 500) * 500.0
    if archetype is Archetype.UNQUALIFIED_TYRE_KICKER:
        amount = min(amount, 5_000.0)
    return max(amount, story.min_amount or 500.0)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic records.

    Every few hundred allocations CPython would otherwise scan all live objects for cycles; with a million
    records that makes generating and loading two to three times slower, and none of them form cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate_dataset(seed: int, deals: int, now: datetime, *, history: bool = False) -> Dataset:
    """Everything in one pass; see the module docstring."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if deals < 0:
        raise ValueError("deals must not be negative")
    with paused_gc():
        return _generate(seed, deals, now, history)


def _generate(seed: int, deals: int, now: datetime, with_history: bool = False) -> Dataset:
    rng = random.Random(seed)
    owners = _owners(rng, max(3, round(deals / 250)))
    companies, country_keys = _companies(rng, max(1, round(deals / 3)), len(owners))
    clock = WorkingHoursClock(rng, now, owners)
    pool = _ContactPool(rng, companies, country_keys)
    weights = HISTORY_ARCHETYPE_WEIGHTS if with_history else ARCHETYPE_WEIGHTS
    archetypes = [archetype for archetype, _ in weights]
    cumulative = list(itertools.accumulate(weight for _, weight in weights))
    total_weight = cumulative[-1]
    gen_deals: list[GenDeal] = []
    activities: list[GenActivity] = []
    history: list[GenFieldChange] = []
    activity_id = 0
    for deal_id in range(1, deals + 1):
        archetype = archetypes[bisect.bisect_right(cumulative, rng.random() * total_weight)]
        company = companies[rng.randrange(len(companies))]
        owner_id = company.owner_id if rng.random() < 0.8 else rng.randint(1, len(owners))
        pipeline = PIPELINES[1] if rng.random() < _ENTERPRISE_SHARE else PIPELINES[0]
        roles = list(ROLES_BY_ARCHETYPE[archetype])
        if archetype is not Archetype.GATEKEEPER_ONLY:
            roles += [rng.choice(EXTRA_ROLES) for _ in range(rng.choice((0, 0, 1, 1, 2)))][: 4 - len(roles)]
        story = STORIES[archetype](rng, len(roles))
        past_days = [plan[2] for plan in story.plans if plan[2] >= 0]
        age = max(
            story.age_days,
            max(past_days, default=0) + 1,
            max((plan[8] or 0 for plan in story.plans), default=0) + 1,
        )
        contact_ids: list[int] = []
        for role in roles:
            contact_ids.append(pool.pick(company.id, role, contact_ids, age))
        stage = stage_for_level(pipeline, story.stage_level, rng)
        # (plan, occurred ts, created ts): booked meetings and open tasks were created before they happen
        timed = []
        for plan in sorted(story.plans, key=lambda plan: -plan[2]):
            occurred_ts = clock.at(plan[2], owner_id)
            booked = plan[8]
            booked_ts = (
                occurred_ts if booked is None else min(clock.at(min(booked, age), owner_id), occurred_ts)
            )
            timed.append((plan, occurred_ts, booked_ts))
        created_ts = clock.at(age, owner_id)
        if timed:  # weekend shifts can move an early activity before the deal's day: the deal came first
            created_ts = min(created_ts, min(entry[2] for entry in timed) - rng.randint(600, 7200))
        newest_past = min(past_days, default=age)
        if stage.is_closed:
            stage_ts = clock.at(story.close_days, owner_id)
            close_date = clock.date_in(-story.close_days)
        else:
            stage_ts = clock.at(rng.randint(newest_past, age), owner_id)
            close_date = clock.date_in(story.close_days)
        stage_ts = max(stage_ts, created_ts)
        last_ts = stage_ts
        for (
            kind,
            direction,
            day,
            outcome,
            slot,
            subject,
            body,
            duration,
            _,
        ), occurred_ts, booked_ts in timed:
            activity_id += 1
            occurred = _stamp(occurred_ts)
            created_at = occurred if booked_ts == occurred_ts else _stamp(booked_ts)
            last_ts = max(last_ts, occurred_ts if day >= 0 else booked_ts)
            contact_id = contact_ids[slot] if slot is not None else None
            if contact_id is not None:
                pool.touch(contact_id, day)
            activities.append(
                GenActivity(
                    activity_id,
                    kind,
                    deal_id,
                    contact_id,
                    owner_id,
                    direction,
                    occurred,
                    outcome,
                    subject,
                    body,
                    duration,
                    created_at,
                    occurred if day >= 0 else created_at,
                )
            )
        modified_ts = min(last_ts + rng.randint(60, 3600), clock.now_ts - 1)
        first_name = pool.rows[contact_ids[0] - 1][0]
        deal = GenDeal(
            deal_id,
            f"{company.name} - {rng.choice(_PRODUCTS)}",
            archetype,
            pipeline.id,
            stage.id,
            _amount(rng, archetype, pipeline.id, story),
            COUNTRIES[country_keys[company.id - 1]][2],
            owner_id,
            company.id,
            _stamp(created_ts),
            _stamp(max(modified_ts, stage_ts)),
            _stamp(stage_ts),
            close_date,
            story.next_step,
            _personal(story.next_step_why, str(first_name)),
            clock.date_in(story.next_step_in_days) if story.next_step_in_days is not None else None,
            story.agreed_interval_days,
            story.agreed_channel,
            story.readiness,
            story.qualification_score,
            story.closed_lost_reason,
            tuple(
                GenDealContact(cid, role, is_primary=index == 0)
                for index, (cid, role) in enumerate(zip(contact_ids, roles, strict=True))
            ),
        )
        gen_deals.append(deal)
        if with_history:
            history.extend(
                deal_history(
                    rng,
                    clock,
                    deal_id=deal_id,
                    owner_id=owner_id,
                    owners=len(owners),
                    story=story,
                    pipeline=pipeline,
                    stage=stage,
                    created_ts=created_ts,
                    stage_ts=stage_ts,
                    timed=timed,
                    final=_current_values(deal),
                    contact_ids=contact_ids,
                )
            )
    owner_of_company = {company.id: company.owner_id for company in companies}
    contacts = pool.freeze(clock, owner_of_company)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "deals": str(deals),
        "seed": str(seed),
        "now": now.isoformat(),
    }
    if with_history:
        meta["history"] = "true"
    return Dataset(
        seed,
        now,
        owners,
        companies,
        contacts,
        PIPELINES,
        tuple(gen_deals),
        tuple(activities),
        meta,
        tuple(history),
    )


def _current_values(deal: GenDeal) -> dict[str, str | int | float | date | None]:
    """The fields a history ends on (``crm_sandbox.histories``), by their history names."""
    return {
        "amount": deal.amount,
        "close_date": deal.close_date,
        "next_step": deal.next_step,
        "next_step_why": deal.next_step_why,
        "next_step_date": deal.next_step_date,
        "agreed_interval_days": deal.agreed_interval_days,
        "agreed_channel": deal.agreed_channel,
        "readiness": deal.readiness,
        "qualification_score": deal.qualification_score,
        "closed_lost_reason": deal.closed_lost_reason,
    }


def _personal(why: str | None, first_name: str) -> str | None:
    """Name the contact in the reason, as reps write it ("Anna: ..."), for a little variety."""
    return None if why is None else f"{first_name}: {why}"
