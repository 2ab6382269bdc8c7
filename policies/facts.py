"""What a deal's activity history says, reduced to the facts the rules need, in one pass.

Every activity is classified once by a lookup table (not a chain of ifs): a *signal* is a two-way
interaction (a reply, an inbound call, a booked or held meeting, a connected call); an *unanswered* touch
is an outbound attempt that got nothing back (an email without reply, a call not connected, a meeting that
was a no-show or cancelled); everything else (notes, tasks, reschedules) is *neutral*. Unanswered touches
are counted across all channels since the last signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from typing import Literal

from policies.model import Activity, ActivityKind, Deal, Direction, Outcome

Touch = Literal["signal", "unanswered", "neutral"]
SignalKind = Literal["reply", "meeting_booked", "meeting_held", "inbound_call", "connected_call", "other"]

_OUTBOUND: Mapping[ActivityKind, Mapping[Outcome, Touch]] = {
    ActivityKind.CALL: {Outcome.CONNECTED: "signal", Outcome.COMPLETED: "signal"},
    ActivityKind.EMAIL: {Outcome.REPLIED: "signal"},
    ActivityKind.MEETING: {
        Outcome.SCHEDULED: "signal",
        Outcome.COMPLETED: "signal",
        Outcome.CONNECTED: "signal",
        Outcome.NO_SHOW: "unanswered",
        Outcome.CANCELLED: "unanswered",
        Outcome.RESCHEDULED: "neutral",
        Outcome.UNKNOWN: "neutral",
    },
}


def _classify(kind: ActivityKind, direction: Direction, outcome: Outcome) -> Touch:
    if kind in (ActivityKind.NOTE, ActivityKind.TASK):
        return "neutral"
    if direction is Direction.INBOUND:
        return "neutral" if outcome is Outcome.BOUNCED else "signal"
    return _OUTBOUND[kind].get(outcome, "unanswered")


TOUCH: Mapping[tuple[ActivityKind, Direction, Outcome], Touch] = {
    combo: _classify(*combo) for combo in product(ActivityKind, Direction, Outcome)
}


def signal_kind(activity: Activity) -> SignalKind:
    """How a signal came in, in the words of the nurture rule's ``reactivate_on`` setting."""
    kind, inbound, outcome = activity.kind, activity.direction is Direction.INBOUND, activity.outcome
    if kind is ActivityKind.EMAIL:
        return "reply"
    if kind is ActivityKind.MEETING:
        return "meeting_booked" if outcome is Outcome.SCHEDULED else "meeting_held"
    if kind is ActivityKind.CALL:
        return "inbound_call" if inbound else "connected_call"
    return "other"


@dataclass(frozen=True, slots=True)
class DealFacts:
    last_signal: Activity | None  # the last conversation with the customer
    last_attempt: Activity | None  # the last unanswered outbound touch (after the last signal, if any)
    unanswered: int  # unanswered touches since the last signal
    unanswered_ids: tuple[str, ...]  # their activity ids, newest last (at most the last 10)

    @property
    def last_signal_at(self) -> datetime | None:
        return self.last_signal.occurred_at if self.last_signal is not None else None


NO_FACTS = DealFacts(None, None, 0, ())  # no conversation, nothing unanswered


def gather_facts(deal: Deal) -> DealFacts:
    """Newest first through the (time-ordered, see ``Deal``) activities, back to the last conversation."""
    touch = TOUCH
    unanswered: list[Activity] = []  # newest first
    for activity in reversed(deal.activities):
        kind = touch[activity.kind, activity.direction, activity.outcome]
        if kind == "unanswered":
            unanswered.append(activity)
        elif kind == "signal":
            if unanswered:  # a touch at the very moment of the conversation is not left unanswered
                at = activity.occurred_at
                unanswered = [a for a in unanswered if a.occurred_at > at]
            return _facts(activity, unanswered)
    return _facts(None, unanswered)


def _facts(last_signal: Activity | None, unanswered: list[Activity]) -> DealFacts:
    if not unanswered:
        return DealFacts(last_signal, None, 0, ()) if last_signal is not None else NO_FACTS
    ids = tuple([a.id for a in reversed(unanswered[:10])])
    return DealFacts(last_signal, unanswered[0], len(unanswered), ids)
