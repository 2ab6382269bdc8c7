"""The parsed form of a SOQL query: what the parser produces and the evaluator compiles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldRef:
    path: tuple[str, ...]  # ("Owner", "Name")
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Count:
    field: FieldRef | None  # COUNT() when None
    alias: str | None
    pos: int


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string | number | boolean | null | date | datetime | relative
    value: Any  # relative: (NAME, n or None)
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    field: FieldRef
    op: str  # = != < <= > >=
    value: Literal


@dataclass(frozen=True, slots=True)
class InList:
    field: FieldRef
    negate: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class InQuery:
    field: FieldRef
    negate: bool
    query: Query


@dataclass(frozen=True, slots=True)
class Like:
    field: FieldRef
    pattern: Literal


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition = Compare | InList | InQuery | Like | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_first: bool


@dataclass(frozen=True, slots=True)
class Query:
    source: str  # the whole query text, for error positions
    select: tuple[FieldRef | Count | Query, ...]
    sobject: str
    sobject_pos: int
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    offset_pos: int = 0
    pos: int = 0  # where this (sub)query starts
