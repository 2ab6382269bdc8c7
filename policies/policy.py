"""A loaded policy: the validated sections plus what the engine needs fast (rules per scope, calendars).

The engine asks ``rules_for(deal, owner)`` for every deal. Resolving scoped overrides means merging
pydantic models, which is far too slow per deal at 20,000 deals a second; so the merged rule set is built
once per combination of matching overrides and cached here, together with the compiled vagueness check.
Calendars are cached per (time zone, working hours). Caching never changes an answer: the engine stays
deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from config.errors import ConfigError
from policies.calendar import BusinessCalendar
from policies.consistency import check_rules
from policies.fillers import VaguenessCheck
from policies.model import Deal, DealField, Owner, WorkingHours
from policies.policy_file import (
    Budgets,
    CalendarSettings,
    Override,
    Rollout,
    RuleSet,
    Scope,
    StageMoves,
    TaskSettings,
    Texts,
)

_CANONICAL_FIELDS = frozenset(DealField)


@dataclass(frozen=True, slots=True)
class PolicyRequirements:
    """What must exist in the CRM for this policy to act: ``followup setup`` and the worker check these."""

    stages: frozenset[tuple[str, str]]  # (pipeline id, stage id) the policy moves deals to
    nurture_names: frozenset[str]
    deal_fields: frozenset[str]  # extra CRM field names the policy reads, beyond DealField


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRules:
    """One scope's merged rules, with the parts that are expensive to build prepared once."""

    rules: RuleSet
    vagueness: VaguenessCheck
    overrides: tuple[str, ...]  # names of the overrides merged in, for explain


@dataclass(frozen=True, slots=True)
class _ScopeCheck:
    """An override's scope as plain attributes: it is checked for every deal, and reading attributes of a
    pydantic model (which has a ``__getattr__`` hook) costs several times more than reading slots."""

    pipelines: tuple[str, ...]
    stages: tuple[str, ...]
    owners: tuple[str, ...]
    teams: tuple[str, ...]
    has_band: bool  # an amount band is set: deals without an amount are out of scope
    min_amount: float | None
    max_amount: float | None

    @classmethod
    def of(cls, when: Scope) -> _ScopeCheck:
        band = when.amount
        low, high = (band.min, band.max) if band is not None else (None, None)
        return cls(when.pipelines, when.stages, when.owners, when.teams, band is not None, low, high)


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``changes`` into a copy of ``base``: mappings merge key by key, everything else replaces."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def merge_rules(defaults: RuleSet, overrides: tuple[Override, ...]) -> RuleSet:
    """The defaults with each override's explicitly set keys applied in order (later ones win)."""
    merged: dict[str, Any] = defaults.model_dump()
    for override in overrides:
        merged = _merge(merged, override.rules.model_dump(exclude_unset=True))
    return RuleSet.model_validate(merged)


def _compile(rules: RuleSet, names: tuple[str, ...]) -> CompiledRules:
    ns = rules.next_step
    return CompiledRules(rules, VaguenessCheck(ns.languages, ns.extra_fillers, ns.min_length), names)


@dataclass(frozen=True, eq=False)
class Policy:
    """The engine's view of a policy (built by ``policies.loader.load_policy``)."""

    mode: Literal["enforce", "shadow"] = "enforce"
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    stages: Mapping[str, StageMoves] = field(default_factory=dict)
    defaults: RuleSet = field(default_factory=RuleSet)
    overrides: tuple[Override, ...] = ()  # rules as written (only the keys they set matter)
    texts: Texts = field(default_factory=Texts)
    budgets: Budgets = field(default_factory=Budgets)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    rollout: Rollout | None = None  # canary enforcement (policies.rollout); None: the mode for every deal
    sources: tuple[str, ...] = ()
    _resolved: dict[tuple[int, ...], CompiledRules] = field(default_factory=dict, repr=False)
    _calendars: dict[tuple[str | None, WorkingHours | None], BusinessCalendar] = field(
        default_factory=dict, repr=False
    )
    _scopes: tuple[_ScopeCheck, ...] = field(init=False, repr=False)  # the overrides' scopes, in order

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scopes", tuple(_ScopeCheck.of(o.when) for o in self.overrides))

    def without_caches(self) -> Policy:
        """The same policy with empty caches: what can be pickled (to another process) at any time."""
        return replace(self, _resolved={}, _calendars={})

    # -- scopes ----------------------------------------------------------------------------------

    def matching_overrides(self, deal: Deal, owner: Owner | None) -> tuple[int, ...]:
        """Indexes of the overrides whose scope contains this deal."""
        found: list[int] = []
        team = owner.team if owner is not None else None
        for index, when in enumerate(self._scopes):
            if when.pipelines and deal.pipeline_id not in when.pipelines:
                continue
            if when.stages and deal.stage.id not in when.stages:
                continue
            if when.owners and deal.owner_id not in when.owners:
                continue
            if when.teams and team not in when.teams:
                continue
            if when.has_band:
                amount = deal.amount
                if amount is None:
                    continue
                if when.min_amount is not None and amount < when.min_amount:
                    continue
                if when.max_amount is not None and amount >= when.max_amount:
                    continue
            found.append(index)
        return tuple(found)

    def rules_for(self, deal: Deal, owner: Owner | None = None) -> CompiledRules:
        """The merged rules for this deal's scope (cached per combination of matching overrides)."""
        combo = self.matching_overrides(deal, owner) if self.overrides else ()
        compiled = self._resolved.get(combo)
        if compiled is None:
            compiled = self._resolve(combo)
        return compiled

    def _resolve(self, combo: tuple[int, ...]) -> CompiledRules:
        chosen = tuple(self.overrides[i] for i in combo)
        rules = merge_rules(self.defaults, chosen) if chosen else self.defaults
        problems = check_rules(rules, self.stages) if len(chosen) > 1 else []
        if problems:
            names = " + ".join(o.name for o in chosen)
            raise ConfigError(
                f"{' '.join(self.sources)}: overrides {names} combined: {'.'.join(map(str, loc))}: {msg}"
                for loc, msg in problems
            )
        compiled = _compile(rules, tuple(o.name for o in chosen))
        self._resolved[combo] = compiled
        return compiled

    # -- calendar --------------------------------------------------------------------------------

    def calendar_for(self, owner: Owner | None) -> BusinessCalendar:
        """The owner's calendar: their zone and hours, else the policy's; holidays and days off always."""
        cache_key = (owner.time_zone, owner.working_hours) if owner is not None else (None, None)
        calendar = self._calendars.get(cache_key)
        if calendar is None:
            calendar = self._build_calendar(*cache_key)
            self._calendars[cache_key] = calendar
        return calendar

    def _build_calendar(self, zone: str | None, hours: WorkingHours | None) -> BusinessCalendar:
        settings = self.calendar
        start, end = settings.working_hours.start, settings.working_hours.end
        days = settings.working_hours.weekday_numbers
        if hours is not None:
            start, end, days = hours.start, hours.end, hours.days
        holidays = settings.holidays
        return BusinessCalendar(
            zone or settings.time_zone,
            start=start,
            end=end,
            days=days,
            country=holidays.country if holidays else None,
            subdivision=holidays.subdivision if holidays else None,
            days_off=settings.company_days_off,
        )

    # -- what the CRM must provide ---------------------------------------------------------------

    def all_rule_sets(self) -> tuple[RuleSet, ...]:
        return (self.defaults, *(merge_rules(self.defaults, (o,)) for o in self.overrides))

    def requirements(self) -> PolicyRequirements:
        stages: set[tuple[str, str]] = set()
        for pipeline, moves in self.stages.items():
            for stage in (moves.lost, moves.nurture, moves.reactivate):
                if stage is not None:
                    stages.add((pipeline, stage))
        nurture: set[str] = set()
        fields: set[str] = set()
        for rules in self.all_rule_sets():
            if rules.nurture.enabled and rules.nurture.list is not None:
                nurture.add(rules.nurture.list)
            if rules.qualification.enabled:
                fields.update(f for f in rules.qualification.required_fields if f not in _CANONICAL_FIELDS)
        return PolicyRequirements(frozenset(stages), frozenset(nurture), frozenset(fields))
