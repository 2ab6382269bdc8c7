"""report.tables: a table declared as fields gives the columns in order and one row of cells per record."""

from __future__ import annotations

from report.model import Cell, Column
from report.tables import Field, number, table, text


def test_each_field_is_a_column_and_fills_its_cell_of_every_row() -> None:
    records: list[tuple[str, int, float | None]] = [("acme", 12_345, None), ("globex", 0, 2.5)]
    fields: tuple[Field[tuple[str, int, float | None]], ...] = (
        text("account", lambda r: r[0]),
        number("API calls", lambda r: r[1], key="api_calls"),
        number("share", lambda r: r[2], digits=1, suffix="%"),
        Field(Column("link"), lambda r: Cell("open", href=f"/a/{r[0]}")),
    )
    built = table("table-x", "Accounts", fields, records, note="two accounts")
    assert (built.id, built.caption, built.note) == ("table-x", "Accounts", "two accounts")
    assert built.columns == (
        Column("account"),
        Column("API calls", True, "api_calls"),
        Column("share", True),
        Column("link"),
    )
    assert [[(c.text, c.sort, c.href) for c in row] for row in built.rows] == [
        [("acme", None, None), ("12,345", 12345, None), ("–", -1, None), ("open", None, "/a/acme")],
        [("globex", None, None), ("0", 0, None), ("2.5%", 2.5, None), ("open", None, "/a/globex")],
    ]


def test_no_records_give_the_columns_and_no_rows() -> None:
    built = table("table-empty", "Nothing", (text("day", lambda d: str(d)),), [])
    assert built.columns == (Column("day"),)
    assert list(built.rows) == []
