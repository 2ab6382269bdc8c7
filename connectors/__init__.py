"""Adapters to the CRMs: the only code that imports ``hubspot`` or ``simple_salesforce``."""
