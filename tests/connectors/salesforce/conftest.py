"""Builders for Salesforce connector unit tests: a connector wired to a ScriptedSalesforce transport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.salesforce import SalesforceConnector, SalesforceOptions, build_salesforce_connector
from tests.clocks import FakeTime
from tests.connectors.salesforce.fake_transport import ScriptedSalesforce

INSTANCE = "https://org.my.salesforce.com"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def scripted() -> ScriptedSalesforce:
    return ScriptedSalesforce()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 5, 12, tzinfo=UTC))


@pytest.fixture
def make_connector(
    tmp_path: Path, scripted: ScriptedSalesforce, clock: FakeClock
) -> Callable[..., SalesforceConnector]:
    token_file = tmp_path / "token"
    token_file.write_text("00DFAKE!token\n")

    def make(**overrides: Any) -> SalesforceConnector:
        settings: dict[str, Any] = {
            "instance_url": INSTANCE,
            "auth": {"kind": "access_token", "access_token_file": str(token_file)},
            "retry": {"attempts": 4, "initial_wait": 0.01, "max_wait": 0.01, "jitter_seed": 1},
        }
        settings.update(overrides)
        time = FakeTime()
        connector = build_salesforce_connector(
            SalesforceOptions.model_validate(settings), now=clock, monotonic=time.monotonic, sleep=time.sleep
        )
        connector.client.session.mount("https://", scripted)
        return connector

    return make
