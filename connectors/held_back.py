"""Actions that only make sense together with their deal's write: a stop or a nurture is one decision.

Closing a deal's tasks "because the deal stopped" and enrolling its contacts in nurture belong to the stage
or state change the same decision makes. When that change is not written because the deal changed since
it was read (``conflict``) or could not be checked now (``retry_later``), writing the rest would act on a
stale decision: it waits with the same status, and the next evaluation decides again on fresh data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.base import ActionOutcome, OutcomeStatus
from policies.model import Action, ChangeStage, CloseReason, CloseTask, EnrolInNurture, SetDealFields

# Outcomes of a deal write that hold back the actions that only make sense with it.
_HOLDING = frozenset({OutcomeStatus.CONFLICT, OutcomeStatus.RETRY_LATER})


def held_back(
    actions: Sequence[Action], deal_outcomes: Mapping[str, ActionOutcome]
) -> dict[str, ActionOutcome]:
    """Outcomes for the actions that wait because their deal's write did not go ahead.

    A stop or a nurture is one decision: when its stage or state change conflicts (the deal changed since
    it was read) or could not be checked, closing its tasks "because the deal stopped" and enrolling its
    contacts wait too, with the same status, and the next evaluation decides again on fresh data.
    """
    holding: dict[str, ActionOutcome] = {}
    for action in actions:
        outcome = deal_outcomes.get(action.key)
        deal_write = isinstance(action, ChangeStage | SetDealFields)
        if deal_write and outcome is not None and outcome.status in _HOLDING:
            holding.setdefault(action.deal_id, outcome)
    held: dict[str, ActionOutcome] = {}
    for action in actions:
        cause = holding.get(action.deal_id)
        dependent = isinstance(action, EnrolInNurture) or (
            isinstance(action, CloseTask) and action.reason is CloseReason.DEAL_STOPPED
        )
        if cause is not None and dependent:
            held[action.key] = ActionOutcome(
                action.key, cause.status, message=f"held back with the deal write: {cause.message}"
            )
    return held
