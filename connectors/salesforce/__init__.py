"""The Salesforce connector: SOQL pulls, sObject Collections write-back, budget, auth, setup.

Built on simple-salesforce only, with one retry layer (``connectors.retry``). See ``connector.py`` for how
the modules fit together and ``docs/crm-fields.md`` for the fields it reads and writes.
"""

from __future__ import annotations

from connectors.salesforce.connector import SalesforceConnector, build_salesforce_connector
from connectors.salesforce.options import SalesforceOptions

__all__ = ["SalesforceConnector", "SalesforceOptions", "build_salesforce_connector"]
