"""The ledger keeps actions as JSON and replays them after a crash: the replay must mean the same."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from policies.codec import action_from_dict, action_to_dict
from policies.model import DealField, Explanation, FieldValue, SetDealFields


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {DealField.FOLLOWUP_STATE_SINCE: datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=UTC)},
            {"followup_state_since": datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=UTC)},
        ),
        ({DealField.NEXT_STEP_DATE: date(2026, 4, 1)}, {"next_step_date": date(2026, 4, 1)}),
        ({DealField.NEXT_STEP_DATE: None}, {"next_step_date": None}),
        ({DealField.AGREED_INTERVAL_DAYS: 14}, {"agreed_interval_days": 14}),
        ({"Custom_Date__c": "2026-04-01"}, {"Custom_Date__c": "2026-04-01"}),  # not ours to type
    ],
)
def test_replayed_deal_fields_keep_their_types(
    fields: dict[str, FieldValue], expected: dict[str, FieldValue]
) -> None:
    """A SetDealFields read back from the ledger has dates and datetimes again, not their ISO strings, so
    its effect on the mirror after crash recovery is the one the engine meant."""
    action = SetDealFields(
        key="cf-00000000000000000000",
        deal_id="7",
        rule_id="nurture",
        explanation=Explanation("x"),
        fields=fields,
    )
    replayed = action_from_dict(action_to_dict(action))
    assert isinstance(replayed, SetDealFields)
    assert dict(replayed.fields) == expected
    assert [type(v) for v in replayed.fields.values()] == [type(v) for v in expected.values()]
