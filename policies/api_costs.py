"""What writing a cycle's actions costs in API calls, per CRM: the backtest's cost model.

The counts follow how the connectors batch their writes (the code is the source; the limits behind it are
in the CRM references the connectors cite):

HubSpot (``connectors/hubspot/write.py``, ``write_tasks.py``):
    tasks.batch_create        ceil(new tasks / 100)                      batch create, 100 inputs a call
    tasks.batch_update        ceil(task updates and closes / 100)        batch update, 100 inputs a call
    deals.batch_read          ceil(deals with stage or field writes / 100)  the re-read for the
                                                                         conditional write
    deals.batch_update        ceil(those deals / 100)                    one merged update per deal
    lists.memberships_add     ceil(contacts enrolled / 1,000) per list   one membership call per list
    lists.memberships_remove  ceil(contacts reactivated / 1,000) per list (when removed from the list)

Salesforce (``connectors/salesforce/write.py``, ``composite.py``; every call counts 1 against the daily
allocation, a Composite or sObject Collections call included):
    collections.create        ceil((new tasks + new campaign members) / 200)
    collections.update        ceil((task updates and closes + opportunities written + member statuses) / 200)
    collections.delete        ceil(campaign members removed / 200)
    query.opportunity_stamps  ceil(opportunities written / 500)          the conditional-write check
    query.campaign_members    ceil(contacts / 500) per campaign          membership before enrolling

Not counted: the pulls (the worker pulls on every cycle whether or not it writes), and the nurture list
or campaign look-up by name, which a worker process makes once and caches. One cycle of the backtest is
one ``apply``; a real worker that spreads the same actions over more cycles pays the rounding up more
often, one that gathers them in fewer pays less.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from math import ceil

from policies import model

CRMS = ("hubspot", "salesforce")
HUBSPOT_BATCH = 100
HUBSPOT_MEMBERSHIPS = 1000
SALESFORCE_COLLECTION = 200
SALESFORCE_IDS_PER_QUERY = 500


def _batches(count: int, size: int) -> int:
    return ceil(count / size) if count else 0


def cycle_calls(actions: Sequence[model.Action]) -> dict[str, Counter[str]]:
    """API calls by CRM and endpoint for writing ``actions`` in one cycle (see the module docstring)."""
    creates = task_changes = 0
    deals: set[str] = set()
    checked: set[str] = set()
    enrol: dict[str, set[str]] = {}
    remove: dict[str, set[str]] = {}
    keep: dict[str, set[str]] = {}  # reactivated, left in the list/campaign (status update on Salesforce)
    for action in actions:
        if isinstance(action, model.CreateTask):
            creates += 1
        elif isinstance(action, model.UpdateTask | model.CloseTask):
            task_changes += 1
        elif isinstance(action, model.ChangeStage | model.SetDealFields):
            deals.add(action.deal_id)
            if action.expected_modified_at is not None:
                checked.add(action.deal_id)
        elif isinstance(action, model.EnrolInNurture):
            enrol.setdefault(action.nurture, set()).update(action.contact_ids)
        elif isinstance(action, model.ReactivateFromNurture):
            target = remove if action.remove_from_nurture else keep
            target.setdefault(action.nurture, set()).update(action.contact_ids)
    hubspot: Counter[str] = Counter()
    hubspot["tasks.batch_create"] += _batches(creates, HUBSPOT_BATCH)
    hubspot["tasks.batch_update"] += _batches(task_changes, HUBSPOT_BATCH)
    hubspot["deals.batch_read"] += _batches(len(deals), HUBSPOT_BATCH)
    hubspot["deals.batch_update"] += _batches(len(deals), HUBSPOT_BATCH)
    for contacts in enrol.values():
        hubspot["lists.memberships_add"] += _batches(len(contacts), HUBSPOT_MEMBERSHIPS)
    for contacts in remove.values():
        hubspot["lists.memberships_remove"] += _batches(len(contacts), HUBSPOT_MEMBERSHIPS)
    salesforce: Counter[str] = Counter()
    members = sum(len(c) for c in enrol.values())
    salesforce["collections.create"] += _batches(creates + members, SALESFORCE_COLLECTION)
    statuses = sum(len(c) for c in keep.values())
    salesforce["collections.update"] += _batches(task_changes + len(deals) + statuses, SALESFORCE_COLLECTION)
    salesforce["collections.delete"] += _batches(sum(len(c) for c in remove.values()), SALESFORCE_COLLECTION)
    salesforce["query.opportunity_stamps"] += _batches(len(checked), SALESFORCE_IDS_PER_QUERY)
    for campaign in {*enrol, *remove, *keep}:
        contacts = enrol.get(campaign, set()) | remove.get(campaign, set()) | keep.get(campaign, set())
        salesforce["query.campaign_members"] += _batches(len(contacts), SALESFORCE_IDS_PER_QUERY)
    return {"hubspot": +hubspot, "salesforce": +salesforce}  # unary +: drop the zero counts
