"""``sf.Opportunity`` and the like, typed as what they are.

simple-salesforce annotates ``Salesforce.__getattr__`` as returning the bulk handlers or an ``SFType`` for
every name, although only ``bulk`` and ``bulk2`` give a handler; this narrows the answer for an sObject name
(and checks it at run time), so the ``.get``/``.create``/``.update`` calls of a test are checked.
"""

from __future__ import annotations

from simple_salesforce.api import Salesforce, SFType


def sobject(sf: Salesforce, name: str) -> SFType:
    """The ``SFType`` for sObject ``name`` (``sobject(sf, "Task")`` is ``sf.Task``)."""
    found = getattr(sf, name)
    assert isinstance(found, SFType), f"{name} is not an sObject type: {type(found).__name__}"
    return found
