"""API budget accounting: what crm-followup spent, what the org has left, and when to stop.

Salesforce's allocation is per org and per rolling 24 hours, shared with every other integration, and every
REST call, query page and collections call counts one
(https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html).
Every response carries ``Sforce-Limit-Info: api-usage=USED/TOTAL`` (plus
``per-app-api-usage=USED/TOTAL(appName=...)`` when the connected app has its own quota). ``ApiBudget`` reads
that header from every response (it is the ``TimeoutSession`` observer) and, before each call, refuses with
``BudgetExhausted`` when:

* the org as a whole has used ``max_org_usage`` of its allocation (crm-followup must never be the
  integration that exhausts it), or
* crm-followup itself has used ``daily_budget_share`` of the allocation in the last 24 hours: counted from
  the per-app header when Salesforce sends one, else from this process's own calls.

Stopping is clean: the worker keeps its cursor and the next cycle resumes where this one stopped.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
import structlog

from connectors.base import ApiUsage
from connectors.errors import BudgetExhausted

log = structlog.get_logger(__name__)

WINDOW = timedelta(hours=24)
_ORG_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
_APP_USAGE = re.compile(r"per-app-api-usage=(\d+)/(\d+)")
_VERSIONED = re.compile(r"^/services/data/v\d+\.\d+/?(.*)$")


def parse_limit_info(value: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """(org used, org total) and (app used, app total) from a ``Sforce-Limit-Info`` header value."""
    org = _ORG_USAGE.search(value)
    app = _APP_USAGE.search(value)
    return (
        (int(org.group(1)), int(org.group(2))) if org else None,
        (int(app.group(1)), int(app.group(2))) if app else None,
    )


def endpoint_of(url: str) -> str | None:
    """A short, id-free name for a REST URL (``query``, ``query_more``, ``composite/sobjects``, ...).

    None for requests that do not count against the API allocation (OAuth token requests).
    """
    path = urlsplit(url).path
    if path.startswith("/services/oauth2/"):
        return None
    if path.startswith("/services/Soap/m/"):
        return "metadata"
    match = _VERSIONED.match(path)
    if match is None:
        return path.strip("/").split("/", 2)[-1] or "other"
    rest = match.group(1).strip("/")
    parts = rest.split("/")
    head = parts[0]
    if head in ("query", "queryAll"):
        return "query_more" if len(parts) > 1 and parts[1] else head
    if head == "composite":
        return "/".join(parts[:2])
    if head == "sobjects" and len(parts) > 1:
        return f"sobjects/{parts[1]}"
    return head or "versions"


class ApiBudget:
    """Counts calls by endpoint, tracks the org's usage, and stops the cycle before a budget is overrun."""

    def __init__(
        self,
        *,
        daily_budget_share: float,
        max_org_usage: float,
        recheck: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._share = daily_budget_share
        self._max_org = max_org_usage
        self._recheck = recheck
        self._clock = clock
        self.calls_by_endpoint: Counter[str] = Counter()
        self.org_usage: tuple[int, int] | None = None
        self.app_usage: tuple[int, int] | None = None
        self._own_calls: deque[datetime] = deque()

    def observe(self, response: requests.Response) -> None:
        """Count one HTTP exchange and read its ``Sforce-Limit-Info`` header."""
        endpoint = endpoint_of(response.url)
        if endpoint is None:
            return
        self.calls_by_endpoint[endpoint] += 1
        self._own_calls.append(self._clock())
        header = response.headers.get("Sforce-Limit-Info")
        if header:
            org, app = parse_limit_info(header)
            self.org_usage = org or self.org_usage
            self.app_usage = app or self.app_usage

    def own_calls_last_24h(self) -> int:
        cutoff = self._clock() - WINDOW
        while self._own_calls and self._own_calls[0] < cutoff:
            self._own_calls.popleft()
        return len(self._own_calls)

    def check(self) -> None:
        """Raise ``BudgetExhausted`` if the next call would overrun the org's or crm-followup's budget."""
        if self.org_usage is None:
            return
        used, total = self.org_usage
        if total <= 0:
            return
        resume_at = self._clock() + self._recheck
        if used >= self._max_org * total:
            log.warning("salesforce_budget_stop", reason="org_usage", used=used, total=total)
            raise BudgetExhausted(
                f"salesforce: the org has used {used} of {total} daily API calls "
                f"(stop at {self._max_org:.0%}); resuming later",
                resume_at=resume_at,
            )
        allowance = self._share * total
        own = self.app_usage[0] if self.app_usage is not None else self.own_calls_last_24h()
        if self.app_usage is not None:
            allowance = min(allowance, self.app_usage[1])
        if own >= allowance:
            log.warning("salesforce_budget_stop", reason="own_share", own=own, allowance=int(allowance))
            raise BudgetExhausted(
                f"salesforce: crm-followup has used {own} API calls in 24 h, its share is {int(allowance)} "
                f"({self._share:.0%} of {total}); resuming later",
                resume_at=resume_at,
            )

    def usage(self) -> ApiUsage:
        remaining = None
        if self.org_usage is not None:
            remaining = max(0, self.org_usage[1] - self.org_usage[0])
        return ApiUsage(
            calls_by_endpoint=dict(self.calls_by_endpoint),
            daily_limit=self.org_usage[1] if self.org_usage else None,
            daily_remaining=remaining,
        )
