"""One running Salesforce org: schema, store, SOQL engine, tokens, API usage, cursors and fault settings.

Everything a request handler needs hangs off ``SalesforceOrg``; the HTTP layer (``app.py``, ``routes_*``)
only translates requests into calls on it. The daily API budget is a rolling 24-hour window on the sandbox
clock: each authenticated REST call counts 1 (a query page, a collections call), as Salesforce counts them.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crm_sandbox.clock import SandboxClock
from crm_sandbox.faults import FaultInjector
from crm_sandbox.salesforce.errors import ApiError, dml_error, invalid_session
from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.loader import INTEGRATION_USERNAME
from crm_sandbox.salesforce.oauth import Credentials, TokenEndpoint, TokenRegistry, make_credentials
from crm_sandbox.salesforce.schema import Schema
from crm_sandbox.salesforce.soql.evaluator import QueryEngine, Result
from crm_sandbox.salesforce.store import SalesforceStore
from crm_sandbox.stats import RequestStats

DEFAULT_DAILY_API_LIMIT = 100_000  # Enterprise Edition base allocation
_MAX_CURSORS = 500
_DAY = timedelta(hours=24)


@dataclass(slots=True)
class Cursor:
    result: Result
    all_rows: bool
    version: str


@dataclass(slots=True)
class SalesforceFaults:
    """Faults only Salesforce has; the shared ``FaultConfig`` covers 5xx, latency, storms, drops, expiry."""

    unable_to_lock_row_rate: float = 0.0  # share of writes answered 400 UNABLE_TO_LOCK_ROW
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def configure(self, rate: float, seed: int) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("unable_to_lock_row_rate must be between 0 and 1")
        self.unable_to_lock_row_rate, self.seed, self.rng = rate, seed, random.Random(seed)


class ApiUsage:
    """Calls in the rolling 24 hours against the daily allocation."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._calls: deque[datetime] = deque()
        self._lock = threading.Lock()

    def used(self, now: datetime) -> int:
        with self._lock:
            self._expire(now)
            return len(self._calls)

    def _expire(self, now: datetime) -> None:
        while self._calls and self._calls[0] <= now - _DAY:
            self._calls.popleft()

    def spend(self, now: datetime) -> int:
        """Count one call and return the usage; raise REQUEST_LIMIT_EXCEEDED when the budget is spent."""
        with self._lock:
            self._expire(now)
            if len(self._calls) >= self.limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self._calls.append(now)
            return len(self._calls)

    def set_used(self, used: int, now: datetime) -> None:
        with self._lock:
            self._calls = deque([now] * max(0, used))


class SalesforceOrg:
    """The state behind one sandbox instance."""

    def __init__(
        self,
        *,
        bare: bool = False,
        clock: SandboxClock | None = None,
        injector: FaultInjector | None = None,
        daily_api_limit: int = DEFAULT_DAILY_API_LIMIT,
    ) -> None:
        self.clock = clock or SandboxClock()
        self.injector = injector or FaultInjector()
        self.stats = RequestStats()
        self.schema = Schema(bare=bare)
        self.store = SalesforceStore(self.schema, self.clock.now)
        self.engine = QueryEngine(self.store)
        self.org_id = make_id("00D", 1)
        self.tokens = TokenRegistry(self.org_id)
        self.usage = ApiUsage(daily_api_limit)
        self.sf_faults = SalesforceFaults()
        self.instance_url = ""  # set once the server listens
        self.metadata_api = True  # False: /services/Soap/m/ answers 404, to test setup's manual fallback
        self.credentials: Credentials
        self.credentials, public_key = make_credentials(INTEGRATION_USERNAME)
        self.token_endpoint = TokenEndpoint(
            self.credentials, public_key, self.tokens, self.active_usernames, self.clock.now
        )
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._cursor_counter = 0
        self._cursor_lock = threading.Lock()

    def active_usernames(self) -> dict[str, str]:
        with self.store.lock:
            return {
                str(u["Username"]): str(u["Id"])
                for u in self.store.table("User").rows.values()
                if u.get("IsActive") and u.get("Username")
            }

    def issue_token(self) -> str:
        """A token for the integration user, as if it had logged in (what the sandbox hands out at start)."""
        return self.tokens.issue(self.store.integration_user_id, self.clock.now())

    def authenticate(self, authorization: str | None) -> str:
        """The User id behind a ``Bearer``/``OAuth`` header, or 401 INVALID_SESSION_ID."""
        if not authorization:
            raise invalid_session()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            raise invalid_session()
        found = self.tokens.lookup(token.strip())
        if found is None or self.injector.token_expired(found.issued_at, self.clock.now()):
            raise invalid_session()
        return found.user_id

    def maybe_lock_fault(self, record_ref: str) -> None:
        """Draw the UNABLE_TO_LOCK_ROW fault for one write."""
        f = self.sf_faults
        if f.unable_to_lock_row_rate and f.rng.random() < f.unable_to_lock_row_rate:
            raise dml_error(
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record_ref}",
            )

    def open_cursor(self, result: Result, all_rows: bool, version: str) -> str:
        with self._cursor_lock:
            self._cursor_counter += 1
            locator = make_id("01g", self._cursor_counter)
            self._cursors[locator] = Cursor(result, all_rows, version)
            while len(self._cursors) > _MAX_CURSORS:
                self._cursors.popitem(last=False)
            return locator

    def cursor(self, locator: str) -> Cursor | None:
        with self._cursor_lock:
            return self._cursors.get(locator)
