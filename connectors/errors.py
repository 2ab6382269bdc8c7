"""Errors a connector raises, named for what the caller should do next.

    CrmError
    ├── RetryLater            transient: 5xx, timeout, dropped connection; the retry layer retries these,
    │   │                     and once it gives up the cycle stops and resumes next time
    │   ├── RateLimited       the CRM asks us to slow down (HubSpot 429, Salesforce's concurrent-request
    │   │                     limit): wait as told (``retry_after``) or for the limit's ``window``, then retry
    │   └── BudgetExhausted   crm-followup's share of the daily API budget is spent: stop, resume later
    ├── FixConfiguration      auth, scopes, missing custom fields, unknown stage: a human must act
    └── SkipRecord            one record is unusable; the run goes on without it

Messages carry object types, record ids, HTTP status and CRM error codes, never tokens or record contents.
"""

from __future__ import annotations

from datetime import datetime


class CrmError(Exception):
    """Base of every connector error."""


class RetryLater(CrmError):
    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class RateLimited(RetryLater):
    """A rate or concurrency limit refused the call (not a fault): retried with the waits the CRM asks for.

    ``retry_after`` is what the CRM said (a ``Retry-After`` header), ``window`` the limit's own period when
    it said nothing (HubSpot's rolling 10 seconds, its search limit's second); either may be None.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        window: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, status=status)
        self.window = window


class BudgetExhausted(RetryLater):
    def __init__(self, message: str, *, resume_at: datetime | None = None) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class FixConfiguration(CrmError):
    """A human must change settings, credentials, scopes or CRM setup (``followup setup``)."""


class SkipRecord(CrmError):
    """One record cannot be used: ``field`` names the CRM field at fault (None: the record as a whole) and
    ``reason`` says why in a word the metrics count by (``out_of_range``, ``unreadable``, ``wrong_type``,
    ``unknown_stage``, ``missing_date``, ...)."""

    def __init__(
        self,
        message: str,
        *,
        object_type: str,
        record_id: str,
        field: str | None = None,
        reason: str = "unusable",
    ) -> None:
        super().__init__(message)
        self.object_type = object_type
        self.record_id = record_id
        self.field = field
        self.reason = reason
