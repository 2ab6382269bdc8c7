"""Load a policy from a YAML file or a folder of them, reporting every problem at once with its place.

Each problem is one line ``file:line:col: path.to.key: message``, so an admin fixes them all in one pass
and an editor can jump to each. In a folder the files are read in name order; each section (``mode``,
``calendar``, ``stages``, ``defaults``, ``texts``, ``tasks``, ``budgets``) may appear in one file only, and
the ``overrides`` of all files add up. A folder lets a team keep, say, one file per region.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.errors import ConfigError
from config.yamlsource import Located, load_located, parse_located
from policies.consistency import Problem, check_override_scope, check_rules, check_stages
from policies.policy import Policy, merge_rules
from policies.policy_file import (
    SINGLE_SECTIONS,
    Budgets,
    CalendarSettings,
    PolicyFile,
    RuleSet,
    TaskSettings,
    Texts,
)

_SUFFIXES = (".yaml", ".yml")
_EMPTY = (
    "the file is empty; a policy file is a mapping of sections "
    "(mode, calendar, stages, defaults, overrides, texts, budgets)"
)


def load_policy(path: Path) -> Policy:
    """Load and check a policy file or folder; raises ``ConfigError`` listing every problem."""
    return load_policy_files(policy_files(path))


def load_policy_files(files: Sequence[Path]) -> Policy:
    """Load and check the policy made of these files (as if they were a folder of their own)."""
    problems: list[str] = []
    located = [found for file in files if (found := _read(file, problems)) is not None]
    return _build(located, problems)


def policy_from_text(text: str, filename: str = "<policy>") -> Policy:
    """Load a policy from YAML text (tests, ``followup validate -``); same checks and messages."""
    located = [parse_located(text, filename)]  # a syntax error raises ConfigError with its place
    return _build(located, [])


def _build(sources: list[Located], problems: list[str]) -> Policy:
    parsed: list[tuple[Located, PolicyFile]] = []
    for located in sources:
        data = located.data
        if data is None:
            problems.append(f"{located.where(())}: (top level): {_EMPTY}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{located.where(())}: (top level): expected a mapping of policy sections")
            continue
        try:
            parsed.append((located, PolicyFile.model_validate(data)))
        except ValidationError as exc:
            problems.extend(_lines(located, exc))
    if problems:
        raise ConfigError(_in_file_order(problems, sources))
    policy = _assemble(parsed, problems)
    if problems:
        raise ConfigError(_in_file_order(problems, sources))
    return policy


_PLACE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): ")


def _in_file_order(problems: list[str], sources: list[Located]) -> list[str]:
    """Problems sorted as an editor shows them: by file, then line and column."""
    order = {located.filename: i for i, located in enumerate(sources)}

    def place(problem: str) -> tuple[int, int, int]:
        match = _PLACE.match(problem)
        if match is None:
            return (len(order), 0, 0)
        return (order.get(match["file"], len(order)), int(match["line"]), int(match["col"]))

    return sorted(problems, key=place)


def policy_files(path: Path) -> list[Path]:
    """The YAML files of a policy folder in name order, or the one file given."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        if not files:
            raise ConfigError([f"{path}: no policy files (*.yaml, *.yml) in this folder"])
        return files
    if not path.exists():
        raise ConfigError([f"{path}: no such policy file or folder"])
    return [path]


def _read(file: Path, problems: list[str]) -> Located | None:
    try:
        return load_located(file)  # limits, syntax and duplicate keys, each with its place
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (see `followup schema` or docs/policies.md for the allowed ones)"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def _lines(located: Located, exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        loc = prefix + tuple(error["loc"])
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        out.append(f"{located.where(loc)}: {dotted}: {_message(error)}")
    return out


def _place(located: Located, loc: Sequence[str | int], message: str) -> str:
    return f"{located.where(loc)}: {'.'.join(str(p) for p in loc)}: {message}"


def _assemble(parsed: list[tuple[Located, PolicyFile]], problems: list[str]) -> Policy:
    owners: dict[str, tuple[Located, PolicyFile]] = {}
    for located, policy_file in parsed:
        for name in SINGLE_SECTIONS:
            if name not in policy_file.model_fields_set:
                continue
            if name in owners:
                first = owners[name][0].where((name,))
                problems.append(_place(located, (name,), f"already set in {first}; set it in one file only"))
            else:
                owners[name] = (located, policy_file)

    def section(name: str) -> Any:
        return getattr(owners[name][1], name) if name in owners else None

    defaults: RuleSet = section("defaults") or RuleSet()
    stages = section("stages") or {}
    defaults_src = owners["defaults"][0] if "defaults" in owners else parsed[0][0]
    if "stages" in owners:
        problems.extend(_placed(owners["stages"][0], ("stages",), check_stages(stages)))
    problems.extend(_placed(defaults_src, ("defaults",), check_rules(defaults, stages)))

    overrides = []
    names: dict[str, str] = {}
    for located, policy_file in parsed:
        for index, override in enumerate(policy_file.overrides):
            base = ("overrides", index)
            overrides.append(override)
            problems.extend(_placed(located, base, check_override_scope(override)))
            if override.name in names:
                problems.append(
                    _place(located, (*base, "name"), f"override name also used at {names[override.name]}")
                )
            names.setdefault(override.name, located.where((*base, "name")))
            merged = merge_rules(defaults, (override,))
            for loc, message in check_rules(merged, stages):
                if _sets(located, (*base, "rules"), loc):
                    problems.append(_place(located, (*base, "rules", *loc), message))
                else:  # the problem comes from the defaults this override keeps; it only shows in this scope
                    problems.append(
                        _place(
                            defaults_src,
                            ("defaults", *loc),
                            f"{message} (in scope of override {override.name!r})",
                        )
                    )
    return Policy(
        mode=section("mode") or "enforce",
        calendar=section("calendar") or CalendarSettings(),
        stages=stages,
        defaults=defaults,
        overrides=tuple(overrides),
        texts=section("texts") or Texts(),
        budgets=section("budgets") or Budgets(),
        tasks=section("tasks") or TaskSettings(),
        rollout=section("rollout"),
        sources=tuple(located.filename for located, _ in parsed),
    )


def _sets(located: Located, base: tuple[str | int, ...], loc: tuple[str | int, ...]) -> bool:
    """Whether the override itself writes a key on the path ``loc`` (so the problem is its own)."""
    return any((*base, *loc[:n]) in located.marks for n in range(1, len(loc) + 1))


def _placed(located: Located, base: tuple[str | int, ...], found: list[Problem]) -> list[str]:
    return [_place(located, (*base, *loc), message) for loc, message in found]
