"""Compile a parsed SOQL query against the schema and run it over the store.

Compilation checks every name (INVALID_TYPE, INVALID_FIELD with Salesforce's messages and positions) and the
type of every literal against its field, then turns the WHERE clause into a predicate, ORDER BY into sort
keys and the select list into a renderer. Execution first asks the indexes for candidates (``Id =``/``IN``,
lookups and external ids ``=``/``IN``, ranges on SystemModstamp, LastModifiedDate and CreatedDate) when a
top-level AND term allows it, then filters, sorts and slices. The result holds the matching record dicts
themselves; records are immutable, so a cursor is a consistent snapshot.

Semantics copied from Salesforce: string comparisons and LIKE are case-insensitive; ``!=`` and ``NOT IN``
match nulls; nulls sort first ascending and last descending unless NULLS FIRST/LAST says otherwise;
15-character ids in literals are accepted and compared as 18-character ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from crm_sandbox.salesforce.ids import normalize_id
from crm_sandbox.salesforce.schema import TEXT_TYPES, FieldDef, ObjectDef
from crm_sandbox.salesforce.soql.ast import (
    And,
    Compare,
    Condition,
    Count,
    FieldRef,
    InList,
    InQuery,
    Literal,
    Not,
    Or,
    Query,
)
from crm_sandbox.salesforce.soql.dates import relative_range
from crm_sandbox.salesforce.soql.errors import SoqlError, invalid_field, located, malformed, no_such_column
from crm_sandbox.salesforce.soql.errors import invalid_type as invalid_type_error
from crm_sandbox.salesforce.soql.predicates import (
    Getter,
    Predicate,
    compare,
    expected_kind,
    fold,
    like,
    range_ids,
    sort_rows,
    type_message,
)
from crm_sandbox.salesforce.store import STAMP_FIELDS, Record, SalesforceStore
from crm_sandbox.salesforce.values import parse_datetime, to_json

_POLY_FIELDS = {"id": "Id", "name": "Name", "type": "Type"}
_PLAIN = frozenset({str, bool, int, float})  # values JSON carries as they are


@dataclass(frozen=True, slots=True)
class Column:
    """One selected field: the lookups to follow, then the field (``Type`` for a polymorphic target)."""

    lookups: tuple[FieldDef, ...]
    final: str  # canonical field name on the target
    field: FieldDef | None  # None for the polymorphic pseudo-field Type


@dataclass(slots=True)
class Compiled:
    obj: ObjectDef
    query: Query
    columns: list[Column | ChildQuery] = field(default_factory=list)
    predicate: Predicate | None = None
    sort_keys: list[tuple[Getter, bool, bool]] = field(default_factory=list)
    count_only: bool = False
    aggregate_alias: str | None = None
    aggregate_field: Getter | None = None
    index_terms: list[Condition] = field(default_factory=list)


@dataclass(slots=True)
class ChildQuery:
    relationship: str
    child_field: str
    compiled: Compiled


@dataclass(slots=True)
class Result:
    """What a query matched; ``records`` are rendered page by page from ``rows``."""

    compiled: Compiled
    rows: list[Record]
    total: int
    aggregate: dict[str, Any] | None = None


class QueryEngine:
    """Parses, compiles and runs SOQL against one store (callers hold ``store.lock``)."""

    def __init__(self, store: SalesforceStore) -> None:
        self.store = store

    # --- compile -------------------------------------------------------------------------------------

    def compile(self, q: Query, *, parent: ObjectDef | None = None) -> Compiled:
        schema = self.store.schema
        if parent is not None:
            rel = parent.children.get(q.sobject.lower())
            if rel is None:
                raise SoqlError(
                    "INVALID_TYPE",
                    located(
                        q.source,
                        q.sobject_pos,
                        f"Didn't understand relationship '{q.sobject}' in FROM part of query call. "
                        "If you are attempting to use a custom relationship, be sure to append "
                        "the '__r' after the custom relationship name. Please reference your WSDL "
                        "or the describe call for the appropriate names.",
                    ),
                )
            obj = schema.get(rel.child)
        else:
            obj = schema.get(q.sobject)
        if obj is None:
            raise invalid_type_error(q.source, q.sobject_pos, q.sobject)
        c = Compiled(obj=obj, query=q)
        for item in q.select:
            if isinstance(item, Count):
                if len(q.select) > 1:
                    raise malformed(q.source, item.pos, "unexpected token: COUNT")
                if item.field is None:
                    c.count_only = True
                else:
                    c.aggregate_field = self.column_getter(obj, item.field, q)
                    c.aggregate_alias = item.alias or "expr0"
            elif isinstance(item, Query):
                if parent is not None:
                    raise malformed(q.source, item.pos, "unexpected token: SELECT")
                child = self.compile(item, parent=obj)
                rel = obj.children[item.sobject.lower()]
                c.columns.append(ChildQuery(rel.name, rel.field, child))
            else:
                c.columns.append(self.column(obj, item, q))
        if q.where is not None:
            c.predicate = self.condition(obj, q.where, q)
            c.index_terms = list(q.where.items) if isinstance(q.where, And) else [q.where]
        for order in q.order_by:
            col = self.column(obj, order.field, q)
            c.sort_keys.append((self._getter(col, sortable=True), order.descending, order.nulls_first))
        return c

    def column(self, obj: ObjectDef, ref: FieldRef, q: Query) -> Column:
        lookups: list[FieldDef] = []
        current: ObjectDef | None = obj
        for i, part in enumerate(ref.path):
            last = i == len(ref.path) - 1
            if current is None:  # after a polymorphic lookup only Id, Name and Type exist
                canonical = _POLY_FIELDS.get(part.lower())
                if canonical is None or not last:
                    raise no_such_column(q.source, ref.pos, part, "Name")
                fd = None if canonical == "Type" else _poly_field(canonical)
                return Column(tuple(lookups), canonical, fd)
            if last:
                fd = current.field(part)
                if fd is None:
                    raise no_such_column(q.source, ref.pos, ref.text if i == 0 else part, current.name)
                return Column(tuple(lookups), fd.name, fd)
            lookup = current.relationship(part)
            if lookup is None:
                raise invalid_field(
                    q.source,
                    ref.pos,
                    f"Didn't understand relationship '{part}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
            lookups.append(lookup)
            current = None if lookup.polymorphic else self.store.schema.get(lookup.reference_to[0])
        raise no_such_column(q.source, ref.pos, ref.text, obj.name)  # empty path: unreachable

    def column_getter(self, obj: ObjectDef, ref: FieldRef, q: Query) -> Getter:
        return self._getter(self.column(obj, ref, q), sortable=False)

    def _getter(self, col: Column, *, sortable: bool) -> Getter:
        find = self.store.find
        final = col.final
        lower = sortable and col.field is not None and col.field.type in TEXT_TYPES - {"id", "reference"}
        is_type = col.field is None

        def target(rec: Record) -> Record | None:
            current: Record | None = rec
            for lookup in col.lookups:
                ref_id = current.get(lookup.name) if current is not None else None
                found = find(ref_id) if ref_id else None
                current = found[1] if found is not None else None
                if current is None:
                    return None
            return current

        if not col.lookups:
            if lower:
                return lambda rec: fold(rec.get(final))
            return lambda rec: rec.get(final)

        def get(rec: Record) -> Any:
            t = target(rec)
            if t is None:
                return None
            if is_type:
                found = self.store.find(t["Id"])
                return found[0].obj.name if found is not None else None
            value = t.get(final)
            return fold(value) if lower else value

        return get

    # --- conditions ----------------------------------------------------------------------------------

    def condition(self, obj: ObjectDef, cond: Condition, q: Query) -> Predicate:
        if isinstance(cond, And):
            parts = [self.condition(obj, c, q) for c in cond.items]
            return lambda rec: all(p(rec) for p in parts)
        if isinstance(cond, Or):
            parts = [self.condition(obj, c, q) for c in cond.items]
            return lambda rec: any(p(rec) for p in parts)
        if isinstance(cond, Not):
            inner = self.condition(obj, cond.item, q)
            return lambda rec: not inner(rec)
        col = self.column(obj, cond.field, q)
        get = self._getter(col, sortable=False)
        fd = col.field or _poly_field("Type")
        if isinstance(cond, Compare):
            return compare(get, fd, cond.op, self.literal(fd, cond.value, q, cond.op), q, cond)
        if isinstance(cond, InList):
            values = [self.literal(fd, v, q, "IN") for v in cond.values]
            if any(isinstance(v, tuple) for v in values):
                raise malformed(q.source, cond.values[0].pos, "unexpected token: IN")
            members = {fold(v) for v in values if v is not None}
            has_null = any(v is None for v in values)

            def in_list(rec: Record) -> bool:
                value = get(rec)
                return (has_null if value is None else fold(value) in members) != cond.negate

            return in_list
        if isinstance(cond, InQuery):
            return self.semi_join(get, fd, cond, q)
        return like(get, fd, cond, q)

    def semi_join(self, get: Getter, fd: FieldDef, cond: InQuery, q: Query) -> Predicate:
        inner = self.compile(cond.query)
        if len(inner.columns) != 1 or not isinstance(inner.columns[0], Column):
            raise malformed(q.source, cond.query.pos, "unexpected token: SELECT")
        col = inner.columns[0]
        if col.field is None or col.field.type not in ("id", "reference"):
            raise SoqlError(
                "INVALID_FIELD",
                located(
                    q.source,
                    cond.query.pos,
                    "The selected field in a semi join subquery must be an Id or a reference field",
                ),
            )
        inner_get = self._getter(col, sortable=False)
        values = {inner_get(r) for r in self.execute(inner, all_rows=False).rows} - {None}
        negate = cond.negate
        return lambda rec: (get(rec) in values) != negate

    def literal(self, fd: FieldDef, lit: Literal, q: Query, op: str) -> Any:
        """The literal as a comparable Python value; relative dates become (start, end) tuples."""
        t = fd.type
        if lit.kind == "null":
            if op not in ("=", "!=", "IN"):
                raise malformed(q.source, lit.pos, "unexpected token: null")
            return None
        expected = expected_kind(t)
        if lit.kind == "relative" and expected in ("date", "datetime"):
            name, n = lit.value
            start, end = relative_range(name, n, self.store.now().astimezone(UTC).date())
            if t == "datetime":
                return (datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC))
            return (start, end)
        if lit.kind != expected and not (expected == "number" and lit.kind == "number"):
            raise invalid_field(q.source, lit.pos, type_message(fd, t))
        if expected == "date":
            return date.fromisoformat(lit.value)
        if expected == "datetime":
            return parse_datetime(lit.value)
        if t in ("id", "reference"):
            if lit.value == "":
                return ""
            normal = normalize_id(lit.value)
            if normal is None:
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    located(q.source, lit.pos, f"invalid ID field: {lit.value}"),
                )
            return normal
        return lit.value

    # --- execute -------------------------------------------------------------------------------------

    def execute(self, c: Compiled, *, all_rows: bool) -> Result:
        table = self.store.table(c.obj.name)
        candidates = self._candidates(c, table.rows, table) if c.index_terms else None
        rows_iter: Iterable[Record] = table.rows.values() if candidates is None else candidates
        pred = c.predicate
        rows = [r for r in rows_iter if (all_rows or not r.get("IsDeleted")) and (pred is None or pred(r))]
        return self._finish(c, rows)

    def _finish(self, c: Compiled, rows: list[Record]) -> Result:
        sort_rows(rows, c.sort_keys)
        q = c.query
        if q.offset:
            rows = rows[q.offset :]
        if q.limit is not None:
            rows = rows[: q.limit]
        if c.count_only:
            return Result(c, [], len(rows))
        if c.aggregate_field is not None:
            get = c.aggregate_field
            count = sum(1 for r in rows if get(r) is not None)
            agg = {"attributes": {"type": "AggregateResult"}, c.aggregate_alias or "expr0": count}
            return Result(c, [], 1, agg)
        return Result(c, rows, len(rows))

    def children(self, child: ChildQuery, parent_id: str, all_rows: bool) -> list[Record]:
        table = self.store.table(child.compiled.obj.name)
        ids = table.ids_where(child.child_field, parent_id)
        pred = child.compiled.predicate
        rows = []
        for rid in sorted(ids):
            r = table.rows[rid]
            if (all_rows or not r.get("IsDeleted")) and (pred is None or pred(r)):
                rows.append(r)
        return self._finish(child.compiled, rows).rows

    def _candidates(self, c: Compiled, rows: dict[str, Record], table: Any) -> list[Record] | None:
        best: list[str] | None = None
        q = c.query
        for term in c.index_terms:
            ids: list[str] | None = None
            if isinstance(term, Compare | InList) and len(term.field.path) == 1:
                fd = c.obj.field(term.field.path[0])
                if fd is None:
                    continue
                if isinstance(term, InList) and not term.negate:
                    values = [self.literal(fd, v, q, "IN") for v in term.values]
                    ids = self._lookup_ids(fd, values, rows, table)
                elif isinstance(term, Compare) and term.op == "=":
                    ids = self._lookup_ids(fd, [self.literal(fd, term.value, q, "=")], rows, table)
                elif isinstance(term, Compare) and fd.name in STAMP_FIELDS and term.value.kind == "datetime":
                    bound = self.literal(fd, term.value, q, term.op)
                    ids = range_ids(table.stamp_index(fd.name), term.op, bound)
            if ids is not None and (best is None or len(ids) < len(best)):
                best = ids
        if best is None:
            return None
        return [rows[rid] for rid in sorted(set(best)) if rid in rows]

    def _lookup_ids(
        self, fd: FieldDef, values: list[Any], rows: dict[str, Record], table: Any
    ) -> list[str] | None:
        if fd.name == "Id":
            return [v for v in values if isinstance(v, str) and v in rows]
        if table.lookup_index(fd.name) is None or any(v is None or isinstance(v, tuple) for v in values):
            return None
        out: list[str] = []
        for v in values:
            out.extend(table.ids_where(fd.name, v))
        return out

    # --- render --------------------------------------------------------------------------------------

    def render(self, c: Compiled, rec: Record, version: str, all_rows: bool) -> tuple[dict[str, Any], int]:
        """One record as JSON and how many rows (itself plus child rows) it counts toward a batch."""
        out = _attributes(c.obj.name, rec["Id"], version)
        weight = 1
        for col in c.columns:
            if isinstance(col, ChildQuery):
                kids = self.children(col, rec["Id"], all_rows)
                weight += len(kids)
                out[col.relationship] = (
                    {
                        "totalSize": len(kids),
                        "done": True,
                        "records": [self.render(col.compiled, k, version, all_rows)[0] for k in kids],
                    }
                    if kids
                    else None
                )
            elif not col.lookups and col.field is not None:  # the common case, kept fast for big pages
                value = rec.get(col.final)
                out[col.final] = value if value is None or type(value) in _PLAIN else to_json(value)
            else:
                self._put(out, rec, col, 0, version)
        return out, weight

    def _put(self, out: dict[str, Any], rec: Record, col: Column, depth: int, version: str) -> None:
        if depth == len(col.lookups):
            if col.field is None:
                found = self.store.find(rec["Id"])
                out["Type"] = found[0].obj.name if found is not None else None
            else:
                out[col.final] = to_json(rec.get(col.final))
            return
        lookup = col.lookups[depth]
        key = lookup.relationship_name or lookup.name
        ref_id = rec.get(lookup.name)
        found = self.store.find(ref_id) if ref_id else None
        if found is None:
            out.setdefault(key, None)
            return
        table, target = found
        nested = out.get(key)
        if nested is None:
            nested = _attributes(table.obj.name, target["Id"], version)
            out[key] = nested
        self._put(nested, target, col, depth + 1, version)


def _attributes(type_name: str, record_id: str, version: str) -> dict[str, Any]:
    return {
        "attributes": {
            "type": type_name,
            "url": f"/services/data/v{version}/sobjects/{type_name}/{record_id}",
        }
    }


def _poly_field(name: str) -> FieldDef:
    return FieldDef(name=name, type="id" if name == "Id" else "string")
