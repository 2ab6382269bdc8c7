"""The ranges the engine computes in, and so the ranges CRM values must fall in (docs/crm-fields.md).

A rep can type anything into a CRM: an agreed interval of a billion days, a close date in the year 9999, an
amount with four hundred digits. The connectors reject a deal whose value lies outside these bounds (with the
field and the reason), and the engine keeps its own date arithmetic inside them, so no value that reaches it,
from a CRM, a snapshot or the mirror, can make it overflow.

* Moments and dates: Salesforce's own valid range, 1700-01-01 to 4000-12-31 (its SOQL reference, "Minimum and
  Maximum Dates"); HubSpot accepts any millisecond epoch, so its values are held to the same range, and so
  are snapshots (``policies.snapshot_check``). The longest duration a policy can write (``MAX_DAYS``, ten
  years) added to the last moment stays far from Python's year 9999.
* Durations: a policy duration and an agreed interval are at most ``MAX_DAYS`` (3650, ten years); an agreed
  interval is a whole number of days from 1.
* Amounts and scores: finite, at most 10^18 in magnitude (Salesforce number fields hold at most 18 digits,
  so no Salesforce value is refused; HubSpot takes numbers of any length).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

EARLIEST_DATE = date(1700, 1, 1)
LATEST_DATE = date(4000, 12, 31)
EARLIEST_MOMENT = datetime(1700, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(4000, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
MAX_DAYS = 3650  # ten years: the longest policy duration and agreed interval
MAX_INTERVAL_DAYS = MAX_DAYS
MAX_MAGNITUDE = 1e18

# Date arithmetic that would pass this moment stops here: a due date this far ahead is "not due", whatever it
# is exactly (``policies.calendar``).
HORIZON = datetime(5000, 1, 1, tzinfo=UTC)


def capped_interval(days: int) -> int:
    """An agreed interval held inside 1..MAX_INTERVAL_DAYS: the engine's guard (connectors reject others)."""
    return min(max(days, 1), MAX_INTERVAL_DAYS)
