"""A table declared once: each column beside how a record fills it.

``table(id, caption, fields, records)`` builds a ``report.model.Table`` from a sequence of ``Field``s, so a
column and its cell are written on one line, not in two lists (the columns, then each row's cells) that
must stay in the same order. ``text`` and ``number`` are the usual fields; ``Field`` itself takes any
``Cell`` (a moment, a link, a share).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from report.model import Cell, Column, Table, num

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Field(Generic[R]):
    """One column of a table and the cell it shows for a record."""

    column: Column
    cell: Callable[[R], Cell]


def text(label: str, value: Callable[[R], str], *, key: str = "") -> Field[R]:
    """A column of text, sorted as text."""
    return Field(Column(label, False, key), lambda record: Cell(value(record)))


def number(
    label: str, value: Callable[[R], float | None], *, key: str = "", digits: int = 0, suffix: str = ""
) -> Field[R]:
    """A numeric column (``report.model.num``: thousands separators, "–" for none, sorted by the number)."""
    return Field(Column(label, True, key), lambda record: num(value(record), digits=digits, suffix=suffix))


def table(
    id: str, caption: str, fields: Sequence[Field[R]], records: Iterable[R], *, note: str | None = None
) -> Table:
    """One row per record, one column per field."""
    return Table(
        id,
        caption,
        tuple(f.column for f in fields),
        [tuple(f.cell(record) for f in fields) for record in records],
        note=note,
    )
