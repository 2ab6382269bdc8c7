"""Every contract test runs on the in-memory CRM, the HubSpot sandbox and the Salesforce sandbox.

The sandboxes are started once per module from the same generated dataset and put back to it before each
test (``restore`` through their control API), so a test starts from the seeded CRM without paying for a
new server; faults and the clock are reset with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from crm_sandbox.dataset import Dataset, generate
from crm_sandbox.hubspot import HubSpotSandbox, RateLimitConfig, running_hubspot_sandbox
from crm_sandbox.salesforce import SalesforceSandbox, running_salesforce_sandbox

from tests.contract.crms import (
    ContractCrm,
    HubSpotContractCrm,
    MemoryContractCrm,
    SalesforceContractCrm,
)

SEED, DEALS = 11, 120
PRISTINE = "pristine"


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SEED, DEALS, datetime.now(UTC).replace(minute=0, second=0, microsecond=0))


@pytest.fixture(scope="module")
def hubspot_sandbox(dataset: Dataset) -> Iterator[HubSpotSandbox]:
    with running_hubspot_sandbox(dataset=dataset, rate_limits=RateLimitConfig.off()) as sandbox:
        sandbox.control.snapshot(PRISTINE)
        yield sandbox


@pytest.fixture(scope="module")
def salesforce_sandbox(dataset: Dataset) -> Iterator[SalesforceSandbox]:
    with running_salesforce_sandbox(dataset=dataset) as sandbox:
        sandbox.control.snapshot(PRISTINE)
        yield sandbox


def _restored(control: object) -> None:
    from crm_sandbox.control_client import SandboxControl

    assert isinstance(control, SandboxControl)
    control.restore(PRISTINE)
    control.set_faults(None)
    control.set_clock(None)


@pytest.fixture(params=["memory", "hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest, dataset: Dataset) -> Iterator[ContractCrm]:
    if request.param == "memory":
        yield MemoryContractCrm(dataset)
    elif request.param == "hubspot":
        hubspot: HubSpotSandbox = request.getfixturevalue("hubspot_sandbox")
        _restored(hubspot.control)
        portal = HubSpotContractCrm(hubspot)
        yield portal
        portal.close()
    else:
        salesforce: SalesforceSandbox = request.getfixturevalue("salesforce_sandbox")
        _restored(salesforce.control)
        salesforce.org.sf_faults.configure(0.0, 0)
        harness = SalesforceContractCrm(salesforce)
        yield harness
        harness.close()
        salesforce.org.sf_faults.configure(0.0, 0)
