"""Policy variants for the backtest: ``--sweep stop.max_unanswered_touches=4,6,8,10``.

A sweep names one setting of the policy's ``defaults`` by its dotted path (as in the policy file under
``defaults:``), or of its ``budgets`` (``budgets.max_new_tasks_per_owner_per_day``), and lists values
separated by commas; each value is read as YAML (``6``, ``90d``, ``null``, ``true``). Each value gives one
variant: the policy with that default changed and checked like a policy file. Overrides keep what they set
themselves: a sweep of ``stop.max_unanswered_touches`` does not change the enterprise override that sets
its own (``shadowed_by`` names such overrides, so the report can say so). Several sweeps combine into every
combination of their values.

Every problem is a ``ConfigError`` line that names the sweep as written, e.g.
``--sweep stop.max_unanswered_touchez=4: stop.max_unanswered_touchez: unknown key; stop has enabled,
max_unanswered_touches, ...``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.errors import ConfigError
from policies.consistency import check_rules
from policies.policy import Policy, merge_rules
from policies.policy_file import Budgets, RuleSet

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Sweep:
    key: str  # dotted path under defaults (or budgets.<name>)
    values: tuple[Any, ...]
    text: str  # as written on the command line, for messages


@dataclass(frozen=True, slots=True)
class Variant:
    """One policy to replay: its name in the report, the settings swept into it, and the policy."""

    name: str
    source: str
    settings: Mapping[str, Any]
    policy: Policy
    shadowed_by: tuple[str, ...] = ()  # overrides that set a swept key themselves


def parse_sweep(text: str) -> Sweep:
    """``KEY=V1,V2,...`` -> a ``Sweep``; the key is checked when the sweep is applied to a policy."""
    key, sep, listed = text.partition("=")
    key = key.strip()
    if not sep or not key or not listed.strip():
        raise ConfigError(
            [f"--sweep {text}: expected KEY=VALUE[,VALUE...], e.g. stop.max_unanswered_touches=4,6,8"]
        )
    values: list[Any] = []
    for raw in listed.split(","):
        try:
            values.append(yaml.safe_load(raw.strip()) if raw.strip() else None)
        except yaml.YAMLError as exc:
            raise ConfigError([f"--sweep {text}: {raw.strip()!r} is not a value: {exc}"]) from None
    return Sweep(key, tuple(values), text)


def _model_at(model: type[BaseModel], path: Sequence[str], text: str) -> None:
    """Check that ``path`` names a setting inside ``model``; raise a located ``ConfigError`` otherwise."""
    current: Any = model
    walked: list[str] = []
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = current.model_fields
            if part not in fields:
                where = ".".join(walked) or "the top level"
                known = ", ".join(fields)
                raise ConfigError([f"--sweep {text}: {'.'.join(path)}: unknown key; {where} has {known}"])
            current = _inner(fields[part].annotation)
        elif current is dict or getattr(current, "__origin__", None) is dict:
            current = None  # a mapping (cadence_by_stage): any key
        else:
            raise ConfigError(
                [f"--sweep {text}: {'.'.join(path)}: {'.'.join(walked)} has no settings below it"]
            )
        walked.append(part)
    if isinstance(current, type) and issubclass(current, BaseModel):
        raise ConfigError([f"--sweep {text}: {'.'.join(path)} is a section; sweep one of its settings"])


def _inner(annotation: Any) -> Any:
    """The model inside ``X | None`` (or the annotation itself)."""
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    origin = getattr(annotation, "__origin__", None)
    return dict if origin is dict else annotation


def _set(data: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def _message(error: Any) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def apply_setting(policy: Policy, key: str, value: Any, text: str) -> Policy:
    """``policy`` with one default (or budget) changed, checked like a policy file."""
    path = key.split(".")
    where = f"--sweep {text}"
    if path[0] == "budgets":
        _model_at(Budgets, path[1:], text)
        data = policy.budgets.model_dump()
        _set(data, path[1:], value)
        try:
            budgets = Budgets.model_validate(data)
        except ValidationError as exc:
            raise ConfigError([f"{where}: {_message(e)}" for e in exc.errors()]) from None
        return replace(policy, budgets=budgets, _resolved={}, _calendars={})
    _model_at(RuleSet, path, text)
    data = policy.defaults.model_dump()
    _set(data, path, value)
    try:
        defaults = RuleSet.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{where}: {_message(e)}" for e in exc.errors()]) from None
    found = check_rules(defaults, policy.stages)
    problems = [f"{where}: {'.'.join(map(str, loc))}: {msg}" for loc, msg in found]
    for override in policy.overrides:
        problems.extend(
            f"{where}: {'.'.join(map(str, loc))}: {msg} (in scope of override {override.name!r})"
            for loc, msg in check_rules(merge_rules(defaults, (override,)), policy.stages)
            if (loc, msg) not in found
        )
    if problems:
        raise ConfigError(problems)
    return replace(policy, defaults=defaults, _resolved={}, _calendars={})


def shadowing_overrides(policy: Policy, key: str) -> tuple[str, ...]:
    """Names of the overrides that set ``key`` themselves (a sweep of the default does not reach them)."""
    if key.startswith("budgets."):
        return ()
    path = key.split(".")
    names = []
    for override in policy.overrides:
        data: Any = override.rules.model_dump(exclude_unset=True)
        for part in path:
            data = data.get(part, _MISSING) if isinstance(data, dict) else _MISSING
        if data is not _MISSING:
            names.append(override.name)
    return tuple(names)


def variants(policies: Sequence[tuple[str, Policy]], sweeps: Sequence[Sweep]) -> list[Variant]:
    """Every policy with every combination of the swept values (or as it is, without sweeps)."""
    out: list[Variant] = []
    for source, base in policies:
        if not sweeps:
            out.append(Variant(source, source, {}, base))
            continue
        shadowed = tuple(dict.fromkeys(n for s in sweeps for n in shadowing_overrides(base, s.key)))
        for combo in itertools.product(*(s.values for s in sweeps)):
            policy = base
            settings: dict[str, Any] = {}
            for sweep, value in zip(sweeps, combo, strict=True):
                policy = apply_setting(policy, sweep.key, value, f"{sweep.key}={_shown(value)}")
                settings[sweep.key] = value
            label = " ".join(f"{k}={_shown(v)}" for k, v in settings.items())
            name = label if len(policies) == 1 else f"{source} {label}"
            out.append(Variant(name, source, settings, policy, shadowed))
    return out


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
