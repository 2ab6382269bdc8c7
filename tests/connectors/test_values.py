"""The value helpers both connectors share (``connectors/values.py``): one number reader, the lenient
``parse_*`` made from a ``read_*``, and ``BadValue.skip``, the one way a bad value rejects its record."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import values as bounds
from connectors.base import RejectedRecord
from connectors.errors import SkipRecord
from connectors.hubspot import values as hubspot_values
from connectors.salesforce import values as salesforce_values
from connectors.values import OUT_OF_RANGE, UNREADABLE, WRONG_TYPE, BadValue, lenient, read_number


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), (3, 3.0), (2.5, 2.5), ("12", 12.0), (" 12.5 ", 12.5), ("-0", -0.0)],
)
def test_read_number_reads_json_numbers_and_numeric_strings(value: object, expected: float | None) -> None:
    assert read_number("amount", value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, WRONG_TYPE),
        ([1], WRONG_TYPE),
        ({"a": 1}, WRONG_TYPE),
        ("twelve", UNREADABLE),
        ("   ", UNREADABLE),
        ("NaN", UNREADABLE),
        ("1e400", OUT_OF_RANGE),
        (10**400, OUT_OF_RANGE),
        (1e300, OUT_OF_RANGE),
    ],
)
def test_read_number_names_the_field_and_the_reason(value: object, reason: str) -> None:
    with pytest.raises(BadValue) as caught:
        read_number("amount", value)
    assert (caught.value.field, caught.value.reason) == ("amount", reason)


def test_lenient_gives_the_value_or_none_and_never_raises() -> None:
    parse = lenient(read_number)
    assert parse("7") == 7.0
    assert parse("seven") is None
    assert parse([7]) is None
    assert parse(None) is None
    assert "read_number" in (parse.__doc__ or "")


@given(st.one_of(st.none(), st.text(), st.integers(), st.floats(), st.booleans(), st.lists(st.integers())))
def test_each_crm_parse_agrees_with_its_reader(value: object) -> None:
    for parse, read in (
        (hubspot_values.parse_datetime, hubspot_values.read_datetime),
        (hubspot_values.parse_date, hubspot_values.read_date),
        (hubspot_values.parse_float, read_number),
        (salesforce_values.parse_datetime, salesforce_values.read_datetime),
        (salesforce_values.parse_number, read_number),
    ):
        try:
            expected = read("-", value)
        except BadValue:
            expected = None
        assert parse(value) == expected


def test_parse_datetime_of_each_crm_reads_its_format() -> None:
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert hubspot_values.parse_datetime("2026-03-01T09:30:00.000Z") == moment
    assert salesforce_values.parse_datetime("2026-03-01T09:30:00.000+0000") == moment
    assert salesforce_values.parse_datetime("tomorrow") is None


def test_skip_rejects_the_whole_record_naming_field_and_reason() -> None:
    bad = BadValue("Amount", OUT_OF_RANGE, "1e+400 is larger than 1e+15 in size")
    skip = bad.skip("Opportunity", "006A", "history: ")
    assert isinstance(skip, SkipRecord)
    assert (skip.object_type, skip.record_id, skip.field, skip.reason) == (
        "Opportunity",
        "006A",
        "Amount",
        OUT_OF_RANGE,
    )
    assert str(skip) == "Opportunity 006A: history: Amount: 1e+400 is larger than 1e+15 in size"
    assert RejectedRecord.of(skip) == RejectedRecord("Opportunity", "006A", OUT_OF_RANGE, "Amount", str(skip))
    assert str(bad.skip("deal", "7")) == "deal 7: Amount: 1e+400 is larger than 1e+15 in size"


def test_wire_text_and_iso_moment_read_what_both_crms_send_as_text() -> None:
    assert bounds.wire_text("CloseDate", "", "date") is None
    with pytest.raises(BadValue) as caught:
        bounds.wire_text("CloseDate", 20260301, "date")
    assert (caught.value.reason, caught.value.detail) == (WRONG_TYPE, "a int where a date belongs")
    read = functools.partial(bounds.iso_moment, "at", kind="dateTime", unreadable="not ISO")
    assert read("2026-03-01T09:30:00") == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)  # no offset: UTC
    assert read("2026-03-01T10:30:00+01:00") == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    for text, reason, detail in (
        ("soon", UNREADABLE, "not ISO"),
        ("9999-12-31T23:59:59-23:00", OUT_OF_RANGE, "a dateTime at the end of the calendar"),
        ("1066-10-14T09:00:00Z", OUT_OF_RANGE, None),
    ):
        with pytest.raises(BadValue) as caught:
            read(text)
        assert caught.value.reason == reason
        assert detail is None or caught.value.detail == detail
