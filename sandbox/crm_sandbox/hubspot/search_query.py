"""Search requests: validating ``PublicObjectSearchRequest`` bodies into ``SearchQuery`` and comparable keys.

HubSpot answers a malformed search with 400 ``VALIDATION_ERROR``: unknown operators or properties, missing
``value``/``values``/``highValue``, and more filter groups or filters than it allows (5 groups, 6 filters a
group, 18 in all: the strictest of the documented envelopes, see sandbox/README.md). Values are compared as
numbers, milliseconds (dates and datetimes, given as ms epoch or ISO) or lowercased text.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_sandbox.hubspot.errors import HubSpotError
from crm_sandbox.hubspot.render import parse_date_ms, parse_datetime_ms

__all__ = [
    "RANGE_OPS",
    "SORTED_TYPES",
    "Filter",
    "SearchQuery",
    "comparable",
    "compile_query",
    "contains_token",
]

SORTED_TYPES = frozenset({"number", "date", "datetime"})
RANGE_OPS = frozenset({"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"})
OPERATORS = frozenset(
    {
        *RANGE_OPS,
        "NEQ",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
_TOKEN_SPLIT = re.compile(r"[\s,;:!?()\[\]{}\"'/\\|<>]+")


def comparable(kind: str, raw: str) -> Any:
    """The comparable form of a value of property type ``kind`` (numbers, ms, or lowercased text)."""
    if kind == "number":
        return float(raw)
    if kind == "datetime":
        return parse_datetime_ms(raw)
    if kind == "date":
        return parse_date_ms(raw)
    return raw.lower()


@dataclass(frozen=True, slots=True)
class Filter:
    prop: str
    kind: str  # property type
    op: str
    value: Any = None
    high: Any = None
    values: frozenset[Any] = frozenset()


@dataclass(frozen=True, slots=True)
class SearchQuery:
    groups: tuple[tuple[Filter, ...], ...]
    sort_prop: str
    sort_kind: str
    descending: bool
    text: str | None


def _invalid(message: str) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message)


def _compile_filter(raw: Any, prop_type: Callable[[str], str | None]) -> Filter:
    if not isinstance(raw, dict):
        raise _invalid("Invalid input JSON: each filter must be an object")
    prop, op = raw.get("propertyName"), raw.get("operator")
    if not isinstance(prop, str) or not isinstance(op, str):
        raise _invalid("Invalid input JSON: filters need propertyName and operator")
    if op not in OPERATORS:
        raise _invalid(
            f"Invalid input JSON on line 1: Cannot deserialize value of type `FilterOperator` from {op!r}"
        )
    kind = prop_type(prop)
    if kind is None:
        raise _invalid(f"There was a problem with the request. Property {prop!r} does not exist")
    if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return Filter(prop, kind, op)
    if op in ("IN", "NOT_IN"):
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise _invalid(f"Operator {op} requires 'values' for property {prop!r}")
        return Filter(prop, kind, op, values=frozenset(_filter_value(kind, v, prop) for v in values))
    if "value" not in raw:
        raise _invalid(f"Operator {op} requires 'value' for property {prop!r}")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        return Filter(prop, kind, op, value=str(raw["value"]).lower())
    value = _filter_value(kind, raw["value"], prop)
    high = None
    if op == "BETWEEN":
        if "highValue" not in raw:
            raise _invalid(f"Operator BETWEEN requires 'highValue' for property {prop!r}")
        high = _filter_value(kind, raw["highValue"], prop)
    return Filter(prop, kind, op, value=value, high=high)


def _filter_value(kind: str, raw: Any, prop: str) -> Any:
    try:
        key = comparable(kind, str(raw).lower() if kind not in SORTED_TYPES else str(raw))
    except ValueError:
        key = None
    if key is None:
        raise _invalid(
            f"There was a problem with the request. {raw!r} is not a valid {kind} value for {prop!r}"
        )
    return key


def compile_query(body: dict[str, Any], prop_type: Callable[[str], str | None]) -> SearchQuery:
    """Validate a ``PublicObjectSearchRequest`` body (filters, sorts, query) into a ``SearchQuery``."""
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list):
        raise _invalid("Invalid input JSON: filterGroups must be a list")
    if len(raw_groups) > MAX_GROUPS:
        raise _invalid(f"Too many filter groups: {len(raw_groups)}. The maximum is {MAX_GROUPS}.")
    groups: list[tuple[Filter, ...]] = []
    total = 0
    for raw_group in raw_groups:
        filters = raw_group.get("filters") if isinstance(raw_group, dict) else None
        if not isinstance(filters, list):
            raise _invalid("Invalid input JSON: each filter group needs a filters list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise _invalid(
                f"Too many filters in a group: {len(filters)}. The maximum is {MAX_FILTERS_PER_GROUP}."
            )
        total += len(filters)
        groups.append(tuple(_compile_filter(f, prop_type) for f in filters))
    if total > MAX_FILTERS:
        raise _invalid(f"Too many filters: {total}. The maximum across all groups is {MAX_FILTERS}.")
    sort_prop, descending = "hs_object_id", False
    sorts = body.get("sorts") or []
    if isinstance(sorts, list) and sorts:
        first = sorts[0]
        if isinstance(first, str):
            descending = first.startswith("-")
            sort_prop = first.lstrip("-+")
        elif isinstance(first, dict) and isinstance(first.get("propertyName"), str):
            sort_prop = first["propertyName"]
            descending = str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
        else:
            raise _invalid("Invalid input JSON: sorts must be property names or {propertyName, direction}")
    sort_kind = prop_type(sort_prop)
    if sort_kind is None:
        raise _invalid(f"There was a problem with the request. Cannot sort on unknown property {sort_prop!r}")
    text = body.get("query")
    if text is not None and (not isinstance(text, str) or len(text) > 3000):
        raise _invalid("query must be a string of at most 3000 characters")
    return SearchQuery(tuple(groups), sort_prop, sort_kind, descending, text or None)


def contains_token(text: str, pattern: str) -> bool:
    tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
    if "*" in pattern:
        return any(fnmatch.fnmatchcase(t, pattern) for t in tokens) or fnmatch.fnmatchcase(text, pattern)
    return pattern in tokens or pattern == text
