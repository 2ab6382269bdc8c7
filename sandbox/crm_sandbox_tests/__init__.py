"""crm-sandbox's own tests: its servers driven by the official HubSpot and Salesforce clients.

A package (not a folder of loose modules) so that mypy names its modules ``crm_sandbox_tests.*`` and the
root ``pyproject.toml`` can give them the test policy of ``tests.*``; not ``tests``, which is the product's.
Not shipped: the wheel holds ``crm_sandbox`` only.
"""
