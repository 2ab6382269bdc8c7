"""What a report page is made of: sections of figures (a chart and the table behind it), tables and tiles.

Builders (``report.hygiene``, ``report.activity``, ``report.operations``) produce these plain values; the
template (``report/templates/report.html.j2``) only lays them out. A new kind of content (the backtest
results, the rollout cohorts) is one more builder returning a ``Section``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell: the text shown, the value it sorts by, and optionally a link."""

    text: str
    sort: str | int | float | None = None
    href: str | None = None
    external: bool = False  # a link into the CRM (opens in a new tab)

    @property
    def sort_value(self) -> str:
        return str(self.sort) if self.sort is not None else self.text


def num(value: int | float | None, *, digits: int = 0, suffix: str = "") -> Cell:
    """A numeric cell: thousands separators for people, the raw number for sorting."""
    if value is None:
        return Cell("–", -1)
    shown = f"{value:,.{digits}f}{suffix}"
    return Cell(shown, round(value, 6))


def moment(at: datetime) -> Cell:
    """A UTC moment to the minute, sorting by its full ISO form."""
    return Cell(at.strftime("%Y-%m-%d %H:%M"), at.isoformat())


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    numeric: bool = False
    key: str = ""  # a stable name for tests and scripts (data-key); defaults to the label

    @property
    def name(self) -> str:
        return self.key or self.label


@dataclass(frozen=True, slots=True)
class Table:
    id: str
    caption: str
    columns: tuple[Column, ...]
    rows: Sequence[tuple[Cell, ...]]
    note: str | None = None  # e.g. "showing 100 of 3,412 deals, sorted by amount"
    kind: str = "table"


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart as static SVG (rendered from a Vega-Lite spec), described for screen readers."""

    id: str
    title: str
    description: str
    svg: str
    marks: int  # how many data marks it draws (the browser test checks they are rendered)


@dataclass(frozen=True, slots=True)
class Figure:
    """A chart and the table that holds its numbers (every chart has one)."""

    chart: Chart | None  # None when the period has nothing to draw (the table says so)
    table: Table
    kind: str = "figure"


@dataclass(frozen=True, slots=True)
class Tile:
    """A headline number; ``key`` names it for tests (``data-key``)."""

    key: str
    label: str
    value: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    id: str
    title: str
    intro: str
    tiles: tuple[Tile, ...] = ()
    blocks: tuple[Figure | Table, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    rule: str
    fired: bool
    reason: str
    evidence: str


@dataclass(frozen=True, slots=True)
class AuditLine:
    at: datetime
    rule: str
    mode: str
    outcome: str
    reason: str
    evidence: str


@dataclass(frozen=True, slots=True)
class DealEvidence:
    """A deal that appears in a list: its engine verdicts now and its audit trail in the period."""

    anchor: str
    account: str
    deal_id: str
    name: str
    owner: str
    stage: str
    crm_url: str | None
    explain: str  # the ``followup explain`` command line
    verdicts: tuple[Verdict, ...]
    audit: tuple[AuditLine, ...]


@dataclass(frozen=True, slots=True)
class AccountInfo:
    name: str
    crm: str
    mode: str  # enforce | shadow, as the settings and policy say now
    mirrored: int


@dataclass(frozen=True)
class Page:
    title: str
    generated_at: datetime
    since: datetime
    now: datetime
    accounts: tuple[AccountInfo, ...]
    sections: tuple[Section, ...]
    deals: tuple[DealEvidence, ...]
    meta: dict[str, Any] = field(default_factory=dict)
