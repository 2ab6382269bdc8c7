"""One duration grammar for policy and settings files (config/durations.py), each file taking its units."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.durations import UNITS, json_schema_pattern, read_duration
from config.settings import SPAN_UNITS, parse_span
from policies.durations import POLICY_UNITS, Duration, parse_duration


@pytest.mark.parametrize(
    ("text", "policy", "span"),
    [
        ("36h", Duration(36, "hours"), timedelta(hours=36)),
        ("14d", Duration(14, "days"), timedelta(days=14)),
        (" 2 Weeks ", Duration(2, "weeks"), timedelta(weeks=2)),
        ("1 day", Duration(1, "days"), timedelta(days=1)),
        ("10 business days", Duration(10, "business_days"), "business days need a policy's calendar"),
        ("3bd", Duration(3, "business_days"), "business days need a policy's calendar"),
        ("15m", "a policy counts hours, days, weeks or business days, not minutes", timedelta(minutes=15)),
        ("90 seconds", "not seconds", timedelta(seconds=90)),
        ("3 fortnights", "is not a duration such as", "expected a time span such as"),
        ("h", "is not a duration such as", "expected a time span such as"),
    ],
)
def test_policies_and_settings_read_the_same_text_each_with_its_units(
    text: str, policy: Duration | str, span: timedelta | str
) -> None:
    for parse, expected in ((parse_duration, policy), (parse_span, span)):
        if isinstance(expected, str):
            with pytest.raises(ValueError, match=re.escape(expected)):
                parse(text)
        else:
            assert parse(text) == expected


amounts = st.integers(min_value=0, max_value=10**12 - 1)
words = st.sampled_from(sorted(UNITS))
spaces = st.sampled_from(["", " ", "  "])


@given(amounts, words, spaces, spaces, st.booleans())
def test_the_schema_pattern_accepts_exactly_what_the_reader_accepts(
    amount: int, word: str, gap: str, pad: str, upper: bool
) -> None:
    text = f"{pad}{amount}{gap}{word.upper() if upper else word}{pad}"
    for allowed in (POLICY_UNITS, SPAN_UNITS):
        pattern = re.compile(json_schema_pattern(allowed))
        try:
            read_duration(text, allowed)
        except ValueError:
            assert pattern.match(text.lower()) is None
        else:
            assert pattern.match(text.lower()) is not None


@given(amounts, words)
def test_a_policy_duration_is_bounded_or_refused_never_an_overflow(amount: int, word: str) -> None:
    outcome: Duration | ValueError
    try:
        outcome = parse_duration(f"{amount}{word}")
    except ValueError as exc:  # OverflowError or any other exception fails the test
        outcome = exc
    if isinstance(outcome, Duration):
        assert outcome.delta <= timedelta(days=3650)
    else:
        assert f"'{amount}{word}'" in str(outcome) or "ambiguous" in str(outcome)
