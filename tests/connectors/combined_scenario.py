"""The combined task's life in a sandbox CRM, shared by the HubSpot and Salesforce contract tests.

A deal pulled from the sandbox is seen with three needs (a cadence follow-up due, a vague next step, only
a gatekeeper among 50,000 worth of contacts): the needs are laid over the pulled aggregate, while its
tasks are exactly what the connector read back from the CRM. So every decision after the first is made
on the checklist state the CRM stored, as in a real cycle; the engine decides, the connector writes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from policies.engine import evaluate
from policies.model import (
    Action,
    Activity,
    ActivityKind,
    Agreement,
    Contact,
    ContactRole,
    Deal,
    Direction,
    FollowupState,
    NextStep,
    Outcome,
    Readiness,
)
from tests.unit.builders import policy

POLICY = policy()  # decision maker from 40,000; cadence 7d; UTC working hours
VAGUE = NextStep("follow up", None, None)


def complete(now: datetime) -> NextStep:
    """A next step with what, why and a date two weeks after ``now``."""
    return NextStep(
        "Send the revised offer with 3-year pricing",
        "Budget round in April",
        (now + timedelta(days=14)).date(),
    )


def seen_with_needs(pulled: Deal, now: datetime, *, step: NextStep = VAGUE, settled: bool = False) -> Deal:
    """``pulled`` with the scenario's needs; ``settled``: a reply came and a decision maker was added."""
    first = pulled.contacts[0]
    gatekeeper = replace(first, roles=frozenset({ContactRole.GATEKEEPER}), is_primary=True)
    talk = Activity(
        f"{pulled.id}-talk", ActivityKind.CALL, Direction.OUTBOUND, now - timedelta(days=9), Outcome.CONNECTED
    )
    contacts: tuple[Contact, ...] = (gatekeeper,)
    activities: tuple[Activity, ...] = (replace(talk, contact_ids=(first.id,)),)
    if settled:
        boss = Contact(f"{pulled.id}-boss", "Dana Boss", roles=frozenset({ContactRole.DECISION_MAKER}))
        contacts += (boss,)
        answer = Activity(
            f"{pulled.id}-reply",
            ActivityKind.EMAIL,
            Direction.INBOUND,
            now - timedelta(hours=1),
            Outcome.REPLIED,
            (first.id,),
        )
        activities += (answer,)
    return replace(
        pulled,
        amount=50_000.0,
        next_step=step,
        agreement=Agreement(),
        qualification_score=90.0,
        readiness=Readiness.UNKNOWN,
        followup_state=FollowupState.ACTIVE,
        followup_state_since=None,
        contacts=contacts,
        activities=activities,
    )


def decide(deal: Deal, now: datetime) -> tuple[Action, ...]:
    return evaluate(POLICY, deal, now).actions
