"""The pure core: domain model, policies loaded from YAML, and the rules that decide follow-ups.

No network, no database, no clock, no logging: ``now`` is always an argument.
"""
