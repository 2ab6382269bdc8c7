"""The seven deals from sales practice the engine is built for, shared by the tests and the bundled
example snapshot (``python -m tests.unit.sales_cases`` rewrites config/examples/snapshot.json)."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from policies.codec import Snapshot, snapshot_to_json
from policies.model import (
    AutoTask,
    Channel,
    ContactRole,
    Deal,
    NextStep,
    Outcome,
    Owner,
    Pipeline,
    Readiness,
    Stage,
    TaskType,
)
from tests.unit.builders import NOW, call, contact, deal

EXAMPLE_SNAPSHOT = Path(__file__).resolve().parents[2] / "config" / "examples" / "snapshot.json"


def ghost(calls: int = 36, score: float | None = 80) -> Deal:
    """1. Called monthly for three years, never an answer."""
    start = NOW - timedelta(days=30 * calls)
    history = tuple(call(f"g{i:02d}", start + timedelta(days=30 * i)) for i in range(calls))
    return deal("ghost", activities=history, created=start - timedelta(days=1), score=score)


CALLBACK_AT = datetime(2026, 2, 18, 9, 30, tzinfo=UTC)  # a Wednesday


def call_me_in_two_weeks(when: datetime = CALLBACK_AT) -> Deal:
    """2. The customer asked to be called back in two weeks."""
    talk = call("cb1", when, Outcome.CONNECTED)
    return deal(
        "callback",
        activities=(talk,),
        interval_days=14,
        channel=Channel.CALL,
        created=when - timedelta(days=3),
    )


def callback_without_why() -> Deal:
    """3. A next step with a what, but no why and no when."""
    talk = call("nw1", NOW - timedelta(days=1), Outcome.CONNECTED)
    return deal(
        "no-why", next_step=NextStep("Call back about the pilot scope", None, None), activities=(talk,)
    )


def not_now(open_task: bool = True) -> Deal:
    """4. Qualified, but the customer says "not now"; the rep still has an open follow-up task."""
    tasks: tuple[AutoTask, ...] = ()
    if open_task:
        tasks = (
            AutoTask(
                "t-old",
                "cf-0123456789abcdef0123",
                "agreed_interval",
                NOW - timedelta(days=3),
                NOW - timedelta(days=2),
                owner_id="o1",
                task_type=TaskType.CALL,
                subject="Follow up",
            ),
        )
    talk = call("nn1", NOW - timedelta(days=4), Outcome.CONNECTED)
    return replace(deal("not-now", readiness=Readiness.NOT_NOW, activities=(talk,)), auto_tasks=tasks)


def gatekeeper_only(stage_id: str = "negotiation") -> Deal:
    """5. 50,000 in negotiation, and the only contact is a gatekeeper."""
    talk = call("gk1", NOW - timedelta(days=2), Outcome.CONNECTED)
    only = (contact("c1", ContactRole.GATEKEEPER, name="Sam Assistant"),)
    return deal("gatekeeper", stage_id=stage_id, amount=50_000, contacts=only, activities=(talk,))


def unqualified() -> Deal:
    """6. A lead nobody qualified: no score."""
    return deal("unqualified", score=None, next_step=NextStep(), stage_id="appointmentscheduled")


def overdue_pile(count: int = 300, owner_id: str = "o7") -> tuple[Deal, ...]:
    """7. Many overdue deals for one owner: each has had no conversation for weeks (cadence overdue)."""
    deals = []
    for i in range(count):
        talk = call(f"p{i}-1", NOW - timedelta(days=10 + i % 20), Outcome.CONNECTED)
        deals.append(
            deal(
                f"pile-{i:03d}",
                owner_id=owner_id,
                amount=float(1_000 + (i * 7919) % 90_000),
                activities=(talk,),
                created=NOW - timedelta(days=40),
            )
        )
    return tuple(deals)


def own_contacts(d: Deal) -> Deal:
    """The deal with contact ids of its own (builders share "c1"), as in a real CRM."""

    def rename(contact_id: str) -> str:
        return f"{d.id}-{contact_id}"

    contacts = tuple(replace(c, id=rename(c.id)) for c in d.contacts)
    activities = tuple(replace(a, contact_ids=tuple(rename(i) for i in a.contact_ids)) for a in d.activities)
    return replace(d, contacts=contacts, activities=activities)


def example_snapshot() -> Snapshot:
    """The bundled example: the seven cases in the example policy's two pipelines, at ``NOW``."""
    enterprise = Pipeline(
        "enterprise",
        "Enterprise Pipeline",
        (
            Stage("discovery", "Discovery", "enterprise", 0, probability=0.1),
            Stage("nurture", "Nurture", "enterprise", 1, probability=0.05),
            Stage("negotiation", "Negotiation", "enterprise", 4, probability=0.8),
            Stage("enterpriselost", "Closed Lost (Enterprise)", "enterprise", 6, True, False, 0.0),
        ),
    )
    from tests.unit.builders import stage

    default = Pipeline(
        "default",
        "Sales Pipeline",
        tuple(
            stage(s)
            for s in ("appointmentscheduled", "qualifiedtobuy", "contractsent", "closedwon", "closedlost")
        ),
    )
    big = gatekeeper_only()
    big = replace(big, pipeline_id="enterprise", stage=enterprise.stages[2])
    deals = (
        ghost(score=30),
        call_me_in_two_weeks(),
        callback_without_why(),
        not_now(),
        big,
        unqualified(),
        *overdue_pile(30),
    )
    owners = (
        Owner("o1", "Alex Rep", "alex@example.com", time_zone="Europe/Berlin", team="emea"),
        Owner("o7", "Robin Busy", "robin@example.com", time_zone="Europe/Stockholm", team="nordics"),
    )
    deals = tuple(own_contacts(d) for d in deals)
    return Snapshot("example", owners, (default, enterprise), deals, taken_at=NOW)


def main() -> int:
    EXAMPLE_SNAPSHOT.write_bytes(snapshot_to_json(example_snapshot(), indent=1) + b"\n")
    print(f"wrote {EXAMPLE_SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
