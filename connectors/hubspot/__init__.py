"""The HubSpot connector, through the official ``hubspot-api-client`` only.

The same roles have the same module names in both connectors (connectors/salesforce/ is laid out alike):

options.py     HubSpotOptions: the settings section (secrets by env var or file)
auth.py        where the token comes from: a private app's token, or an OAuth refresh
client.py      the one door: the SDK built once with urllib3 retries off, the limiter, the retry layer,
               call counts, and the error translation (errors.py: ApiException, urllib3 -> connectors.errors)
limits.py      the 10-second, search and daily budgets, fed by X-HubSpot-RateLimit-* headers
mapping.py     pure functions: HubSpot JSON -> policies.model (values.py: scalars and their bounds)
directory.py   owners, pipelines, deal property types
fetch.py       search (id-windowed past 10,000), batch read (100), associations v4 (1,000)
aggregate.py   whole deal aggregates (contacts with roles, activities, our tasks)
contact_cache.py  the pull's bounded cache of contacts and their engagements (contact_cache_size)
echo.py        our own writes' echo in an incremental pull (no self-echo)
pull.py        full and incremental pulls, the cursor
history.py     deal histories (propertiesWithHistory, 50 deals per call) for the backtest
write.py       batched write-back (payloads.py: actions -> properties; write_tasks.py: tasks, no duplicates;
               batch_update.py: one update call for up to 100 deals or tasks; lists.py: the MANUAL contact
               lists nurture enrolment uses, found and created by name)
setup.py       what ``followup setup hubspot`` checks and creates
connector.py   HubSpotConnector, and build_hubspot_connector, which wires the parts
"""

from __future__ import annotations

from connectors.hubspot.connector import HubSpotConnector, build_hubspot_connector
from connectors.hubspot.options import HubSpotOptions

__all__ = ["HubSpotConnector", "HubSpotOptions", "build_hubspot_connector"]
