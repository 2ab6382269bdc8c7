"""The HubSpot connector, through the official ``hubspot-api-client`` only.

options.py     HubSpotOptions: the settings section (secrets by env var or file)
auth.py        private-app token or OAuth refresh
client.py      the SDK built once with urllib3 retries off; the one call path (limit, count, translate)
errors.py      every SDK sub-package's ApiException and urllib3 error -> connectors.errors
limiter.py     10-second, search and daily budgets, fed by X-HubSpot-RateLimit-* headers
mapping.py     pure functions: HubSpot JSON <-> policies.model
fetch.py       search (id-windowed past 10,000), batch read (100), associations v4 (1,000)
aggregate.py   whole deal aggregates (contacts with roles, activities, our tasks)
directory.py   owners, pipelines, property types
pull.py        full and incremental pulls, the cursor
history.py     deal histories (propertiesWithHistory, 50 deals per call) for the backtest
write.py       batched write-back; write_tasks.py: tasks without duplicates
setup.py       what ``followup setup hubspot`` checks and creates
connector.py   HubSpotConnector, build_hubspot_connector
"""

from __future__ import annotations

from connectors.hubspot.connector import HubSpotConnector, build_hubspot_connector
from connectors.hubspot.options import HubSpotOptions

__all__ = ["HubSpotConnector", "HubSpotOptions", "build_hubspot_connector"]
