"""Plain JSON calls to a running sandbox's CRM API, as any other integration or a rep's tool makes them.

For benchmarks and scripts that change data behind a client's back without pulling in an official SDK:

    from crm_sandbox.api_client import SandboxApi

    api = SandboxApi(hs.base_url, hs.access_token)                                # HubSpot
    api.call("POST", "/crm/v3/objects/deals/batch/update", {"inputs": [...]})
    api = SandboxApi(sf.instance_url, sf.access_token, verify=str(sf.ca_file))    # Salesforce
    api.call("PATCH", "/services/data/v62.0/composite/sobjects", {"allOrNone": False, "records": [...]})

The calls are counted in the sandbox's stats and subject to its faults and rate limits like any other
request (unlike the ``/__sandbox__/`` control routes). An error answer raises ``SandboxApiError`` with its
status and body, so a script fails at the call that went wrong.
"""

from __future__ import annotations

from typing import Any

import requests

__all__ = ["SandboxApi", "SandboxApiError"]

_TIMEOUT_S = 60.0


class SandboxApiError(RuntimeError):
    """The sandbox answered a CRM API call with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"sandbox API call failed with {status}: {body[:500]}")
        self.status = status
        self.body = body


class SandboxApi:
    """Bearer-token JSON calls to one running sandbox."""

    def __init__(self, base_url: str, access_token: str, *, verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._verify = verify  # per request: REQUESTS_CA_BUNDLE would override Session.verify
        self._session = requests.Session()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """``method path`` with ``body`` as JSON; the answer's JSON (None for an empty answer)."""
        response = self._session.request(
            method,
            f"{self.base_url}{path}",
            json=body,
            headers=self._headers,
            verify=self._verify,
            timeout=_TIMEOUT_S,
        )
        if response.status_code >= 400:
            raise SandboxApiError(response.status_code, response.text)
        return response.json() if response.content else None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SandboxApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
