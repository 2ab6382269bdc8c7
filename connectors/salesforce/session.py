"""The HTTP session every Salesforce call goes through: a timeout on every request, no hidden retries.

simple-salesforce sends requests without a timeout, so a silent socket can block a worker forever
(simple-salesforce#148, #240, #611). ``TimeoutSession`` sets a (connect, read) timeout on every request
that does not bring its own, mounts adapters with urllib3 retries switched off (``connectors.retry`` is
the one retry layer), and pins ``verify`` to the configured CA bundle per request, because with
``trust_env`` a ``REQUESTS_CA_BUNDLE`` in the environment would otherwise win over ``Session.verify``.
``trust_env`` stays on so that corporate proxies from the environment keep working.

Each response is handed to an observer (API usage accounting, ``limits.ApiBudget``) before the caller
sees it, which also covers calls that simple-salesforce makes on its own (``query_more``, ``SFType``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

ResponseObserver = Callable[[requests.Response], None]


class TimeoutSession(requests.Session):
    """A ``requests.Session`` with a default timeout, a pinned CA bundle and no urllib3 retries."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        ca_file: Path | None = None,
        observer: ResponseObserver | None = None,
    ) -> None:
        super().__init__()
        self.timeout = (connect_timeout, read_timeout)
        self.ca_file = str(ca_file) if ca_file is not None else None
        if self.ca_file is not None:
            self.verify = self.ca_file
        self.observer = observer
        no_retries = Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False)
        for prefix in ("https://", "http://"):
            self.mount(prefix, HTTPAdapter(max_retries=no_retries))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.ca_file is not None and kwargs.get("verify") is None:
            kwargs["verify"] = self.ca_file
        response = super().request(method, url, *args, **kwargs)
        if self.observer is not None:
            self.observer(response)
        return response
