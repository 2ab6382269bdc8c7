"""Local HubSpot- and Salesforce-compatible API servers for demos, tests and benchmarks."""
