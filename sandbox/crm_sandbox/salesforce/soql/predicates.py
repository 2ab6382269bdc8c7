"""The pieces of SOQL evaluation that work on single values: comparisons, LIKE, literal typing, sort keys.

Salesforce semantics kept here: string comparisons and LIKE are case-insensitive; ``!=`` matches nulls; a
relative date literal is a half-open range that ``=``, ``<``, ``>=`` ... compare against as Salesforce
defines; nulls sort first ascending and last descending unless NULLS FIRST/LAST says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from crm_sandbox.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, FieldDef
from crm_sandbox.salesforce.soql.ast import Compare, Like, Query
from crm_sandbox.salesforce.soql.errors import invalid_field, malformed
from crm_sandbox.salesforce.store import Record

Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]


def fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def expected_kind(t: str) -> str:
    if t in TEXT_TYPES:
        return "string"
    if t in NUMBER_TYPES:
        return "number"
    return {"boolean": "boolean", "date": "date", "datetime": "datetime"}.get(t, "string")


def type_message(fd: FieldDef, t: str) -> str:
    soap = {"datetime": "dateTime", "double": "double", "currency": "double", "percent": "double"}.get(t, t)
    head = f"value of filter criterion for field '{fd.name}' must be of type"
    if t in TEXT_TYPES:
        return f"{head} string and should be enclosed in quotes"
    return f"{head} {soap} and should not be enclosed in quotes"


def compare(get: Getter, fd: FieldDef, op: str, value: Any, q: Query, cond: Compare) -> Predicate:
    if value is None:
        return (lambda rec: get(rec) is None) if op == "=" else (lambda rec: get(rec) is not None)
    if isinstance(value, tuple):  # a relative date range [start, end)
        start, end = value

        def in_range(rec: Record) -> bool:
            v = get(rec)
            if v is None:
                return op == "!="
            if op == "=":
                return bool(start <= v < end)
            if op == "!=":
                return not start <= v < end
            if op == "<":
                return bool(v < start)
            if op == "<=":
                return bool(v < end)
            if op == ">":
                return bool(v >= end)
            return bool(v >= start)

        return in_range
    if fd.type == "boolean" and op not in ("=", "!="):
        raise malformed(q.source, cond.value.pos, f"unexpected token: {op}")
    target = fold(value)

    def compare(rec: Record) -> bool:
        v = get(rec)
        if v is None:
            return op == "!="
        v = fold(v)
        if op == "=":
            return bool(v == target)
        if op == "!=":
            return bool(v != target)
        if op == "<":
            return bool(v < target)
        if op == "<=":
            return bool(v <= target)
        if op == ">":
            return bool(v > target)
        return bool(v >= target)

    return compare


def like(get: Getter, fd: FieldDef, cond: Like, q: Query) -> Predicate:
    if fd.type not in TEXT_TYPES or fd.type in ("id", "reference"):
        raise invalid_field(
            q.source, cond.field.pos, f"invalid operator on {expected_kind(fd.type)} field: {fd.name}"
        )
    regex = []
    text = str(cond.pattern.value)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            regex.append(re.escape(text[i + 1]))
            i += 2
            continue
        regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    pattern = re.compile("".join(regex), re.IGNORECASE | re.DOTALL)
    return lambda rec: (v := get(rec)) is not None and pattern.fullmatch(str(v)) is not None


def range_ids(index: Any, op: str, bound: Any) -> list[str] | None:
    if isinstance(bound, tuple) or bound is None:
        return None
    if op == ">":
        return list(index.range(bound, False, None, False))
    if op == ">=":
        return list(index.range(bound, True, None, False))
    if op == "<":
        return list(index.range(None, False, bound, False))
    if op == "<=":
        return list(index.range(None, False, bound, True))
    if op == "=":
        return list(index.range(bound, True, bound, True))
    return None


def sort_rows(rows: list[Record], keys: list[tuple[Getter, bool, bool]]) -> None:
    for get, descending, nulls_first in reversed(keys):
        # rank puts nulls where asked after the (possibly reversed) sort
        null_rank = 0 if nulls_first != descending else 2

        def key(rec: Record, get: Getter = get, null_rank: int = null_rank) -> tuple[int, Any]:
            v = get(rec)
            return (null_rank, None) if v is None else (1, v)

        rows.sort(key=key, reverse=descending)
