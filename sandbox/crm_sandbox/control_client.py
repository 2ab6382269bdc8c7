"""Python client for a sandbox's ``/__sandbox__/`` routes, for tests, benchmarks and users' scripts.

    from crm_sandbox.control_client import SandboxControl

    control = SandboxControl(sandbox.base_url)                      # HubSpot (plain HTTP)
    control = SandboxControl(sf.instance_url, verify=sf.ca_file)    # Salesforce (HTTPS, sandbox CA)
    control.reset_stats()
    ...                                                             # drive the CRM API
    assert control.stats()["endpoints"]["POST /crm/v3/objects/tasks/batch/create"] == 1
    control.snapshot("before"); ...; control.restore("before")
    control.set_faults(FaultConfig(error_rate=0.1, seed=3))        # None = no faults
    control.set_clock(datetime(2026, 3, 2, 9, tzinfo=UTC))          # None = real time

Every method raises ``SandboxControlError`` (with the status and the sandbox's error text) when the sandbox
answers with an error, so a test fails at the call that went wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
from crm_sandbox.faults import FaultConfig

__all__ = ["SandboxControl", "SandboxControlError"]

_TIMEOUT_S = 30.0


class SandboxControlError(RuntimeError):
    """The sandbox refused a control call."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"sandbox control call failed with {status}: {message}")
        self.status = status


class SandboxControl:
    """Stats, snapshots, faults and clock of one running sandbox."""

    def __init__(self, base_url: str, verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        # Passed with every request rather than set on the session: requests lets REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE override Session.verify, which would reject the Salesforce sandbox's own CA.
        self._verify = verify
        self._session = requests.Session()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, route: str, body: Any = None, *, send_body: bool = False) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/__sandbox__/{route}",
            json=body if send_body else None,
            timeout=_TIMEOUT_S,
            verify=self._verify,
        )
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text
            raise SandboxControlError(response.status_code, message)
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        """``{"total", "endpoints": {"METHOD /template": n}, "statuses": {"200": n}, "faults": {...}}``."""
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def reset_stats(self) -> None:
        """Zero every request count."""
        self._call("POST", "reset-stats")

    def snapshot(self, name: str = "default") -> str:
        """Save the sandbox's data under ``name`` (replacing an older snapshot of that name)."""
        self._call("POST", "snapshot", {"name": name}, send_body=True)
        return name

    def restore(self, name: str = "default") -> None:
        """Put back the data saved under ``name``."""
        self._call("POST", "restore", {"name": name}, send_body=True)

    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return FaultConfig.from_dict(self._call("GET", "faults"))

    def set_faults(self, config: FaultConfig | None) -> None:
        """Replace the fault configuration (restarting its seeded sequence); None turns faults off."""
        self._call("POST", "faults", (config or FaultConfig()).to_dict(), send_body=True)

    def clock(self) -> datetime:
        """The sandbox's current time."""
        return datetime.fromisoformat(self._call("GET", "clock")["now"])

    def set_clock(self, when: datetime | None, *, ticking: bool = False) -> None:
        """Freeze the sandbox's time at ``when`` (or start it there, ``ticking``); None = real time."""
        if when is not None and when.tzinfo is None:
            raise ValueError("set_clock needs a timezone-aware datetime")
        body = {"now": when.isoformat() if when is not None else None, "ticking": ticking}
        self._call("POST", "clock", body, send_body=True)
