"""The stories behind the generated deals: one function per ``Archetype``, each returning a ``Story``.

A story says, in relative days and contact slots, what happened on a deal (its activity history) and what
the rep wrote into the deal (next step, why, when, agreed interval and channel, readiness, score, lost
reason). The generator (sandbox/generator.py) turns days into timestamps inside the owner's working hours
and slots into contact ids. Keeping the stories free of ids and clocks makes each one readable on its own,
and makes the defining traits easy to check in tests:

- responsive buyer: replies and meetings throughout, last inbound within a week, a concrete next step.
- ghosting prospect: 10-40 weekly/fortnightly/monthly outbound touches, no inbound at all.
- call me in two weeks: a connected call 2-6 days ago; interval 14, channel call, next step date call+14.
- qualified but not ready: score >= 70, readiness not_now, a far next-step date; often in "nurture".
- gatekeeper only: amount >= 50,000, late stage, every activity with the single gatekeeper contact.
- unqualified tyre-kicker: score < 30 or none, early stage, little history.
- missing next step: a live history but no next step, why or date.
- vague next step: the next step is a filler phrase in English, German or Swedish.
- recently won / lost: closed 1-30 days ago; lost deals carry a closed_lost_reason.

Four more tell the stories a backtest needs (``HISTORY_ARCHETYPE_WEIGHTS``, used when the dataset is
generated with histories; see sandbox/crm_sandbox/histories.py):

- won after a long silence: engaged, then 7-10 unanswered touches over 5-10 weeks, a reply, and a win
  2-150 days ago: what "stop after 6 unanswered touches" would have killed.
- lost after many touches: engaged, then 8-15 unanswered touches, closed lost by the rep 2-150 days ago.
- nurture comeback: qualified, parked as "not now" for 4-13 weeks, back with an inbound reply; moved on or
  won since.
- agreed callbacks: 3-6 connected calls, each agreeing when to call again (7-30 days); the rep calls back
  early, on time or late (a 14-day callback made on day 20).

Slot 0 is the deal's primary contact. Days are "days before today" (negative = in the future). A story's
``changes`` are field changes at given days (``histories.py`` derives the rest of the history).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from crm_sandbox.dataset import ActivityKind, Archetype
from crm_sandbox.names import (
    CONCRETE_STEPS,
    EMAIL_IN,
    EMAIL_OUT,
    GHOST_EMAILS,
    LOST_REASONS,
    NOT_NOW_STEPS,
    NOTES,
    VAGUE_NEXT_STEPS,
)

__all__ = [
    "ARCHETYPE_WEIGHTS",
    "EXTRA_ROLES",
    "HISTORY_ARCHETYPE_WEIGHTS",
    "ROLES_BY_ARCHETYPE",
    "STORIES",
    "Story",
]

CALL, EMAIL, MEETING, NOTE, TASK = (
    ActivityKind.CALL,
    ActivityKind.EMAIL,
    ActivityKind.MEETING,
    ActivityKind.NOTE,
    ActivityKind.TASK,
)
OUT, IN = "outbound", "inbound"

# (kind, direction, days_ago, outcome, contact slot, subject, body, duration_s, booked_days_ago)
Plan = tuple[ActivityKind, str, int, str | None, int | None, str, str, int | None, int | None]

# Share of deals per archetype (percent). Roughly what a mid-size B2B pipeline looks like.
ARCHETYPE_WEIGHTS: tuple[tuple[Archetype, int], ...] = (
    (Archetype.RESPONSIVE_BUYER, 18),
    (Archetype.GHOSTING_PROSPECT, 13),
    (Archetype.CALL_ME_IN_TWO_WEEKS, 8),
    (Archetype.QUALIFIED_NOT_READY, 10),
    (Archetype.GATEKEEPER_ONLY, 6),
    (Archetype.UNQUALIFIED_TYRE_KICKER, 10),
    (Archetype.MISSING_NEXT_STEP, 10),
    (Archetype.VAGUE_NEXT_STEP, 10),
    (Archetype.RECENTLY_WON, 8),
    (Archetype.RECENTLY_LOST, 7),
)

# With histories (a pipeline to backtest): fewer of the "now" stories, and the four that need a history.
HISTORY_ARCHETYPE_WEIGHTS: tuple[tuple[Archetype, int], ...] = (
    (Archetype.RESPONSIVE_BUYER, 12),
    (Archetype.GHOSTING_PROSPECT, 9),
    (Archetype.CALL_ME_IN_TWO_WEEKS, 5),
    (Archetype.QUALIFIED_NOT_READY, 7),
    (Archetype.GATEKEEPER_ONLY, 4),
    (Archetype.UNQUALIFIED_TYRE_KICKER, 7),
    (Archetype.MISSING_NEXT_STEP, 7),
    (Archetype.VAGUE_NEXT_STEP, 7),
    (Archetype.RECENTLY_WON, 5),
    (Archetype.RECENTLY_LOST, 5),
    (Archetype.WON_AFTER_SILENCE, 8),
    (Archetype.LOST_AFTER_TOUCHES, 10),
    (Archetype.NURTURE_COMEBACK, 7),
    (Archetype.AGREED_CALLBACKS, 7),
)

# Contact roles on the deal, slot by slot; the generator adds up to two optional extra roles.
ROLES_BY_ARCHETYPE: dict[Archetype, tuple[str, ...]] = {
    Archetype.RESPONSIVE_BUYER: ("champion", "decision_maker"),
    Archetype.GHOSTING_PROSPECT: ("influencer",),
    Archetype.CALL_ME_IN_TWO_WEEKS: ("decision_maker",),
    Archetype.QUALIFIED_NOT_READY: ("economic_buyer", "champion"),
    Archetype.GATEKEEPER_ONLY: ("gatekeeper",),
    Archetype.UNQUALIFIED_TYRE_KICKER: ("user",),
    Archetype.MISSING_NEXT_STEP: ("champion",),
    Archetype.VAGUE_NEXT_STEP: ("influencer",),
    Archetype.RECENTLY_WON: ("decision_maker", "economic_buyer", "champion"),
    Archetype.RECENTLY_LOST: ("decision_maker", "influencer"),
    Archetype.WON_AFTER_SILENCE: ("decision_maker", "champion"),
    Archetype.LOST_AFTER_TOUCHES: ("influencer",),
    Archetype.NURTURE_COMEBACK: ("economic_buyer", "champion"),
    Archetype.AGREED_CALLBACKS: ("decision_maker",),
}
EXTRA_ROLES: tuple[str, ...] = ("influencer", "user", "economic_buyer", "champion")


@dataclass(slots=True)
class Story:
    """What an archetype decided for one deal, in relative days and contact slots."""

    stage_level: str  # early | mid | late | nurture | won | lost
    age_days: int  # deal created this many days ago
    close_days: int  # open deals: days until the close date (may be < 0); closed: days since closing
    plans: list[Plan] = field(default_factory=list)
    next_step: str | None = None
    next_step_why: str | None = None
    next_step_in_days: int | None = None  # next_step_date = today + this
    agreed_interval_days: int | None = None
    agreed_channel: str | None = None
    readiness: str | None = None
    qualification_score: float | None = None
    closed_lost_reason: str | None = None
    min_amount: float | None = None
    # For histories: field changes at given days (days ago, field, value), and the stage level a closed
    # deal was at before it closed.
    changes: list[tuple[int, str, object]] = field(default_factory=list)
    pre_close_level: str | None = None


def _plan(
    kind: ActivityKind,
    day: int,
    outcome: str | None,
    slot: int | None,
    text: tuple[str, str],
    *,
    inbound: bool = False,
    duration: int | None = None,
    booked: int | None = None,
) -> Plan:
    """One activity: ``text`` is (subject, body); ``booked`` is when a meeting or task was created."""
    return (kind, IN if inbound else OUT, day, outcome, slot, text[0], text[1], duration, booked)


def _spread(rng: random.Random, count: int, newest: int, oldest: int) -> list[int]:
    """``count`` days between ``newest`` and ``oldest`` days ago, oldest first."""
    span, draw = max(0, oldest - newest) + 1, rng.random  # random() is several times cheaper than randint()
    return sorted((newest + int(draw() * span) for _ in range(count)), reverse=True)


def _engaged(rng: random.Random, day: int, slots: int) -> Plan:
    """One touch in a live conversation: replies, connected calls, held meetings, notes, tasks."""
    slot = rng.randrange(slots)
    pick = rng.random()
    if pick < 0.30:
        return _plan(EMAIL, day, "sent", slot, rng.choice(EMAIL_OUT))
    if pick < 0.55:
        return _plan(EMAIL, day, "replied", slot, rng.choice(EMAIL_IN), inbound=True)
    if pick < 0.70:
        inbound, duration = rng.random() < 0.33, rng.randint(300, 1800)
        return _plan(CALL, day, "connected", slot, _CALL_TEXT, inbound=inbound, duration=duration)
    if pick < 0.85:
        duration, booked = rng.choice((1800, 2700, 3600)), day + rng.randint(2, 10)
        return _plan(MEETING, day, "completed", slot, _SESSION_TEXT, duration=duration, booked=booked)
    if pick < 0.95:
        return _plan(NOTE, day, None, None, rng.choice(NOTES))
    return _plan(TASK, day, "completed", slot, ("Prepare proposal", "Prepared and sent."))


_CALL_TEXT = ("Call", "Went through open points.")
_SESSION_TEXT = ("Working session", "Walked through the solution.")


def _history(rng: random.Random, story: Story, count: int, newest: int, slots: int) -> None:
    story.plans.extend(_engaged(rng, day, slots) for day in _spread(rng, count, newest, story.age_days - 1))


def responsive_buyer(rng: random.Random, slots: int) -> Story:
    level = rng.choice(("early", "mid", "mid", "late", "late"))
    story = Story(level, rng.randint(25, 300), rng.randint(10, 90))
    _history(rng, story, rng.randint(6, 12), 5, slots)
    reply_day = rng.randint(0, 6)
    story.plans.append(_plan(EMAIL, reply_day, "replied", 0, rng.choice(EMAIL_IN), inbound=True))
    if rng.random() < 0.4:  # a meeting already booked for the coming days
        text = ("Next steps meeting", "Agenda: proposal questions and timeline.")
        story.plans.append(
            _plan(MEETING, -rng.randint(2, 10), "scheduled", 0, text, duration=3600, booked=reply_day)
        )
    if rng.random() < 0.25:  # an open task the rep set themselves
        text = ("Send follow-up material", "Collect the references promised in the meeting.")
        story.plans.append(_plan(TASK, -rng.randint(1, 7), "not_started", 0, text, booked=reply_day))
    story.next_step, story.next_step_why = rng.choice(CONCRETE_STEPS)
    story.next_step_in_days = rng.randint(2, 10)
    story.agreed_interval_days = 7 if rng.random() < 0.4 else None
    story.agreed_channel = rng.choice(("meeting", "email", "call"))
    story.readiness = "ready"
    story.qualification_score = float(rng.randint(60, 95))
    return story


def ghosting_prospect(rng: random.Random, slots: int) -> Story:
    cadence = rng.choice((7, 7, 7, 14, 30))
    touches = rng.randint(10, 16) if cadence == 30 else rng.randint(10, 40)
    last = rng.randint(1, 10)
    age = last + touches * cadence + rng.randint(10, 40)
    story = Story(rng.choice(("early", "early", "mid")), age, rng.randint(-40, 45))
    for n in range(touches):
        day = min(age - 1, last + n * cadence + rng.randint(0, 2))
        pick = rng.random()
        if pick < 0.6:
            story.plans.append(_plan(EMAIL, day, "sent", 0, rng.choice(GHOST_EMAILS)))
        elif pick < 0.85:
            story.plans.append(_plan(CALL, day, "no_answer", 0, ("Call", "No answer."), duration=0))
        else:
            story.plans.append(_plan(CALL, day, "voicemail", 0, ("Call", "Left a voicemail."), duration=40))
    if rng.random() < 0.5:
        story.next_step, story.next_step_in_days = "Follow up on proposal", -rng.randint(5, 60)
        story.next_step_why = "Sent the proposal; waiting for feedback"
    story.readiness = rng.choice(("unknown", None))
    story.qualification_score = float(rng.randint(30, 70))
    return story


def call_me_in_two_weeks(rng: random.Random, slots: int) -> Story:
    story = Story(rng.choice(("mid", "mid", "late")), rng.randint(30, 200), rng.randint(20, 90))
    call_day = rng.randint(2, 6)
    _history(rng, story, rng.randint(4, 9), call_day + 3, slots)
    text = ("Call", "Good call. Asked us to call again in two weeks, after their board meeting.")
    story.plans.append(_plan(CALL, call_day, "connected", 0, text, duration=rng.randint(600, 1500)))
    story.plans.append(_plan(NOTE, call_day, None, None, ("Note", "Call back in 14 days as agreed.")))
    story.next_step = "Call to agree pilot scope after the board meeting"
    story.next_step_why = "Asked on the last call to be called again in two weeks"
    story.next_step_in_days = 14 - call_day
    story.agreed_interval_days, story.agreed_channel = 14, "call"
    story.readiness = "unknown"
    story.qualification_score = float(rng.randint(50, 90))
    return story


def qualified_not_ready(rng: random.Random, slots: int) -> Story:
    level = rng.choice(("nurture", "nurture", "early", "mid"))
    story = Story(level, rng.randint(45, 400), rng.randint(60, 240))
    last = rng.randint(5, 40)
    _history(rng, story, rng.randint(5, 12), last + 1, slots)
    text = ("Re: Timing", "We like it, but nothing will happen before the next budget cycle.")
    story.plans.append(_plan(EMAIL, last, "replied", 0, text, inbound=True))
    story.next_step, story.next_step_why = rng.choice(NOT_NOW_STEPS)
    story.next_step_in_days = rng.randint(30, 120)
    story.agreed_interval_days = rng.choice((30, 60, 90))
    story.agreed_channel = "email"
    story.readiness = "not_now"
    story.qualification_score = float(rng.randint(70, 95))
    return story


def gatekeeper_only(rng: random.Random, slots: int) -> Story:
    story = Story("late", rng.randint(40, 250), rng.randint(-10, 60), min_amount=50_000.0)
    for day in _spread(rng, rng.randint(4, 12), 1, story.age_days - 1):
        pick = rng.random()
        if pick < 0.4:
            text = ("Call", "Spoke to the assistant; will pass the message on.")
            story.plans.append(_plan(CALL, day, "connected", 0, text, duration=rng.randint(60, 240)))
        elif pick < 0.75:
            story.plans.append(_plan(EMAIL, day, "sent", 0, rng.choice(EMAIL_OUT)))
        else:
            text = ("Re: Meeting request", "I have forwarded your message and will get back to you.")
            story.plans.append(_plan(EMAIL, day, "replied", 0, text, inbound=True))
    story.next_step = "Get a meeting with the decision maker"
    story.next_step_why = "Only reached the assistant so far"
    story.next_step_in_days = rng.randint(-10, 10)
    story.readiness = "unknown"
    story.qualification_score = float(rng.randint(40, 75))
    return story


def unqualified_tyre_kicker(rng: random.Random, slots: int) -> Story:
    story = Story("early", rng.randint(10, 180), rng.randint(15, 120))
    days = _spread(rng, rng.randint(2, 7), 1, story.age_days - 1)
    text = ("Pricing request", "Can you send me your prices? Just looking around.")
    story.plans.append(_plan(EMAIL, days[0], "replied", 0, text, inbound=True))
    for day in days[1:]:
        if rng.random() < 0.8:
            story.plans.append(_plan(EMAIL, day, "sent", 0, rng.choice(EMAIL_OUT)))
        else:
            text = ("Intro call", "Did not show up.")
            story.plans.append(_plan(MEETING, day, "no_show", 0, text, duration=1800, booked=day + 3))
    if rng.random() < 0.4:
        story.next_step, story.next_step_in_days = "Send brochure", rng.randint(-20, 10)
    story.readiness = rng.choice(("unknown", None))
    story.qualification_score = None if rng.random() < 0.5 else float(rng.randint(5, 29))
    return story


def missing_next_step(rng: random.Random, slots: int) -> Story:
    story = Story(rng.choice(("early", "mid", "late")), rng.randint(20, 300), rng.randint(-20, 90))
    _history(rng, story, rng.randint(3, 10), rng.randint(1, 30), slots)
    story.readiness = rng.choice(("unknown", "ready", None))
    story.qualification_score = float(rng.randint(30, 85))
    return story


def vague_next_step(rng: random.Random, slots: int) -> Story:
    story = Story(rng.choice(("early", "mid", "late")), rng.randint(20, 300), rng.randint(-20, 90))
    _history(rng, story, rng.randint(4, 11), rng.randint(1, 30), slots)
    story.next_step = rng.choice(VAGUE_NEXT_STEPS)
    if rng.random() >= 0.7:
        story.next_step_why = rng.choice(("see notes", "as discussed", "siehe Notiz"))
    story.next_step_in_days = rng.randint(1, 20) if rng.random() < 0.5 else None
    story.readiness = rng.choice(("unknown", "ready", None))
    story.qualification_score = float(rng.randint(30, 85))
    return story


def recently_won(rng: random.Random, slots: int) -> Story:
    closed = rng.randint(1, 30)
    story = Story("won", closed + rng.randint(30, 250), closed)
    _history(rng, story, rng.randint(6, 14), closed + 1, slots)
    text = ("Contract signing", "Signed. Kickoff next.")
    story.plans.append(_plan(MEETING, closed, "completed", 0, text, duration=1800, booked=closed + 5))
    story.plans.append(_plan(NOTE, closed, None, None, ("Note", "Closed won. Handover to onboarding.")))
    story.readiness = "ready"
    story.qualification_score = float(rng.randint(70, 100))
    return story


def recently_lost(rng: random.Random, slots: int) -> Story:
    closed = rng.randint(1, 30)
    story = Story("lost", closed + rng.randint(30, 250), closed)
    _history(rng, story, rng.randint(4, 13), closed + 1, slots)
    text = ("Re: Proposal", "Thank you for your time; we have decided to go another way.")
    story.plans.append(_plan(EMAIL, closed, "replied", 0, text, inbound=True))
    story.closed_lost_reason = rng.choice(LOST_REASONS)
    story.readiness = rng.choice(("unknown", "not_now", None))
    story.qualification_score = float(rng.randint(20, 80))
    return story


_SILENT = (("Call", "No answer."), ("Call", "Left a voicemail."))


def _unanswered(rng: random.Random, day: int) -> Plan:
    """One outbound touch that got nothing back: an unanswered e-mail, call or voicemail."""
    pick = rng.random()
    if pick < 0.55:
        return _plan(EMAIL, day, "sent", 0, rng.choice(GHOST_EMAILS))
    if pick < 0.85:
        return _plan(CALL, day, "no_answer", 0, _SILENT[0], duration=0)
    return _plan(CALL, day, "voicemail", 0, _SILENT[1], duration=40)


def won_after_silence(rng: random.Random, slots: int) -> Story:
    closed = rng.randint(2, 150)
    touches, gap = rng.randint(7, 10), rng.choice((5, 7, 7, 7))
    comeback = closed + rng.randint(10, 40)  # the reply that ended the silence
    silence_end = comeback + rng.randint(2, 6)
    silence_start = silence_end + gap * (touches - 1)
    engaged = silence_start + rng.randint(5, 12)  # the last conversation before the silence
    story = Story("won", engaged + rng.randint(20, 80), closed, pre_close_level="late")
    _history(rng, story, rng.randint(3, 7), engaged, slots)
    story.plans.extend(_unanswered(rng, silence_start - n * gap) for n in range(touches))
    text = ("Re: Checking in", "Sorry for the silence, we had a reorganisation. Can we pick this up again?")
    story.plans.append(_plan(EMAIL, comeback, "replied", 0, text, inbound=True))
    for day in _spread(rng, rng.randint(2, 5), closed + 1, comeback - 1):
        story.plans.append(_engaged(rng, day, slots))
    text = ("Contract signing", "Signed after the restart. Kickoff next.")
    story.plans.append(_plan(MEETING, closed, "completed", 0, text, duration=1800, booked=closed + 4))
    story.readiness = "ready"
    story.qualification_score = float(rng.randint(70, 95))
    return story


def lost_after_touches(rng: random.Random, slots: int) -> Story:
    closed = rng.randint(2, 150)
    touches, gap = rng.randint(8, 15), rng.choice((4, 7, 7, 10))
    last_touch = closed + rng.randint(5, 30)
    first_touch = last_touch + gap * (touches - 1)
    engaged = first_touch + rng.randint(3, 10)
    story = Story("lost", engaged + rng.randint(15, 60), closed, pre_close_level=rng.choice(("early", "mid")))
    _history(rng, story, rng.randint(2, 6), engaged, slots)
    story.plans.extend(_unanswered(rng, first_touch - n * gap) for n in range(touches))
    story.plans.append(_plan(NOTE, closed, None, None, ("Note", "No reaction for weeks. Closing as lost.")))
    story.closed_lost_reason = rng.choice(("Lost contact with the buyer", "No decision / status quo"))
    story.readiness = rng.choice(("unknown", None))
    story.qualification_score = float(rng.randint(40, 80))
    return story


def nurture_comeback(rng: random.Random, slots: int) -> Story:
    won = rng.random() < 0.35
    closed = rng.randint(1, 40)
    comeback = (closed + rng.randint(10, 60)) if won else rng.randint(5, 120)
    parked = comeback + rng.randint(28, 90)
    story = Story("won" if won else rng.choice(("mid", "late")), parked + rng.randint(20, 120), closed)
    if not won:
        story.close_days = rng.randint(20, 90)
    story.pre_close_level = "late"
    _history(rng, story, rng.randint(3, 8), parked + 1, slots)
    text = ("Re: Timing", "We like it, but nothing will happen before the next budget cycle.")
    story.plans.append(_plan(EMAIL, parked, "replied", 0, text, inbound=True))
    for day in _spread(rng, rng.randint(0, 3), comeback + 5, parked - 5):
        story.plans.append(_plan(EMAIL, day, "sent", 0, rng.choice(GHOST_EMAILS)))
    text = ("Re: Budget", "The new budget is approved. Can we restart where we left off?")
    story.plans.append(_plan(EMAIL, comeback, "replied", 0, text, inbound=True))
    newest = closed + 1 if won else 1
    for day in _spread(rng, rng.randint(2, 6), newest, max(newest, comeback - 1)):
        story.plans.append(_engaged(rng, day, slots))
    if won:
        text = ("Contract signing", "Signed. The budget came through.")
        story.plans.append(_plan(MEETING, closed, "completed", 0, text, duration=1800, booked=closed + 3))
    not_now, why = rng.choice(NOT_NOW_STEPS)
    story.changes += [
        (parked, "readiness", "not_now"),
        (parked, "next_step", not_now),
        (parked, "next_step_why", why),
        (parked, "next_step_date", -(rng.randint(30, 90) - parked)),  # days ago of the date itself
        (comeback, "readiness", "ready"),
    ]
    story.next_step, story.next_step_why = rng.choice(CONCRETE_STEPS)
    story.next_step_in_days = rng.randint(3, 14) if not won else None
    story.readiness = "ready"
    story.qualification_score = float(rng.randint(75, 95))
    return story


def agreed_callbacks(rng: random.Random, slots: int) -> Story:
    age = rng.randint(70, 220)
    story = Story(rng.choice(("mid", "mid", "late")), age, rng.randint(15, 80))
    day = age - rng.randint(3, 10)
    _history(rng, story, rng.randint(1, 3), day + 1, slots)
    calls, last = 0, (day, 14)
    while day >= 2 and calls < 6:
        text = ("Call", "Good call. Agreed when to talk again.")
        story.plans.append(_plan(CALL, day, "connected", 0, text, duration=rng.randint(600, 1500)))
        interval = rng.choice((7, 14, 14, 21, 30))
        story.changes += [
            (day, "agreed_interval_days", interval),
            (day, "agreed_channel", "call"),
            (day, "next_step", "Call back as agreed to review the open points"),
            (day, "next_step_why", "The customer asked to be called again then"),
            (day, "next_step_date", day - interval),
        ]
        last = (day, interval)
        # The rep calls back early, on time or late (a 14-day callback on day 20); now and then the
        # customer calls first.
        if rng.random() < 0.1 and interval > 5:
            text = ("Call", "The customer called us before we called back.")
            story.plans.append(
                _plan(CALL, day - interval + 3, "connected", 0, text, inbound=True, duration=600)
            )
            day -= interval - 3
        else:
            day -= interval + rng.choice((-4, -2, 0, 0, 0, 0, 1, 3, 6, 9))
        calls += 1
    # The deal shows what the last call agreed.
    story.next_step = "Call back as agreed to review the open points"
    story.next_step_why = "The customer asked to be called again then"
    story.next_step_in_days = last[1] - last[0]
    story.agreed_interval_days, story.agreed_channel = last[1], "call"
    story.qualification_score = float(rng.randint(55, 90))
    story.readiness = "unknown"
    return story


STORIES: dict[Archetype, Callable[[random.Random, int], Story]] = {
    Archetype.RESPONSIVE_BUYER: responsive_buyer,
    Archetype.GHOSTING_PROSPECT: ghosting_prospect,
    Archetype.CALL_ME_IN_TWO_WEEKS: call_me_in_two_weeks,
    Archetype.QUALIFIED_NOT_READY: qualified_not_ready,
    Archetype.GATEKEEPER_ONLY: gatekeeper_only,
    Archetype.UNQUALIFIED_TYRE_KICKER: unqualified_tyre_kicker,
    Archetype.MISSING_NEXT_STEP: missing_next_step,
    Archetype.VAGUE_NEXT_STEP: vague_next_step,
    Archetype.RECENTLY_WON: recently_won,
    Archetype.RECENTLY_LOST: recently_lost,
    Archetype.WON_AFTER_SILENCE: won_after_silence,
    Archetype.LOST_AFTER_TOUCHES: lost_after_touches,
    Archetype.NURTURE_COMEBACK: nurture_comeback,
    Archetype.AGREED_CALLBACKS: agreed_callbacks,
}
