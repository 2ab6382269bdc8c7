"""The Salesforce connector, through the official ``simple-salesforce`` only.

The same roles have the same module names in both connectors (connectors/hubspot/ is laid out alike):

options.py     SalesforceOptions: the settings section (secrets by env var or file)
auth.py        where the token comes from: JWT bearer, client credentials, password, a static token
client.py      the one door: budget check, retry layer, re-authentication on 401, Composite query bundles,
               and the error translation (errors.py: simple-salesforce, requests -> connectors.errors);
               session.py: the HTTP session (timeouts, no urllib3 retries)
limits.py      the API budget, fed by Sforce-Limit-Info headers
mapping.py     pure functions: records -> policies.model (activities.py: Tasks, Events, e-mails;
               values.py: scalars and their bounds)
directory.py   users and stages, and what the connector remembers of the org between calls
soql.py        the queries
pull.py        full and incremental pulls, the cursor (spill.py: a full pull's deals on disk until its
               last page)
write.py       write-back (payloads.py: actions -> records; composite.py: sObject Collections, safe retries)
setup.py       what ``followup setup salesforce`` checks and creates
connector.py   SalesforceConnector, and build_salesforce_connector, which wires the parts

See ``docs/crm-fields.md`` for the fields it reads and writes.
"""

from __future__ import annotations

from connectors.salesforce.connector import SalesforceConnector, build_salesforce_connector
from connectors.salesforce.options import SalesforceOptions

__all__ = ["SalesforceConnector", "SalesforceOptions", "build_salesforce_connector"]
