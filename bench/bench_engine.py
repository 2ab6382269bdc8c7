"""Engine throughput: deals evaluated per second on one core.

Generates deals in-process (about 10 activities each, a realistic mix of stages, next steps, agreements,
contacts and open auto-tasks), then times ``policies.engine.evaluate`` over all of them with the bundled
example policy, twice: the first run (nothing decided yet, so most deals get new actions) and the steady
state (the same deals after those actions were applied, 15 minutes later: what every further worker cycle
costs). Generation is not timed; times are CPU time of this process, i.e. one core. Run:

    .venv/bin/python -m bench.bench_engine [--deals 100000] [--seed 7] [--repeat 3] [--planner]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from policies.engine import evaluate
from policies.loader import load_policy
from policies.model import (
    Activity,
    ActivityKind,
    Agreement,
    AutoTask,
    Channel,
    Contact,
    ContactRole,
    Deal,
    Direction,
    NextStep,
    Outcome,
    Owner,
    Readiness,
    Stage,
    TaskType,
    action_kind,
)
from policies.planner import plan
from policies.simulate import apply_actions

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
STAGES = (
    Stage("appointmentscheduled", "Appointment Scheduled", "default", 0, probability=0.2),
    Stage("qualifiedtobuy", "Qualified To Buy", "default", 1, probability=0.4),
    Stage("presentationscheduled", "Presentation Scheduled", "default", 2, probability=0.6),
    Stage("decisionmakerboughtin", "Decision Maker Bought-In", "default", 3, probability=0.8),
    Stage("contractsent", "Contract Sent", "default", 4, probability=0.9),
    Stage("closedwon", "Closed Won", "default", 5, True, True, 1.0),
)
WHATS = ("Send the revised offer with 3-year pricing", "follow up", "nachfassen", None, "Demo for the CFO")
OUTCOMES = {
    ActivityKind.CALL: (Outcome.CONNECTED, Outcome.CONNECTED, Outcome.NO_ANSWER, Outcome.VOICEMAIL),
    ActivityKind.EMAIL: (Outcome.SENT, Outcome.SENT, Outcome.REPLIED),
    ActivityKind.MEETING: (Outcome.COMPLETED, Outcome.SCHEDULED, Outcome.NO_SHOW),
    ActivityKind.NOTE: (Outcome.UNKNOWN,),
}
KINDS = (
    ActivityKind.CALL,
    ActivityKind.CALL,
    ActivityKind.EMAIL,
    ActivityKind.EMAIL,
    ActivityKind.MEETING,
    ActivityKind.NOTE,
)


def generate(count: int, seed: int, owners: int = 200) -> list[Deal]:
    rng = random.Random(seed)
    deals = []
    for n in range(count):
        created = NOW - timedelta(days=rng.randint(5, 400))
        contacts = tuple(
            Contact(
                f"c{n}-{i}", f"Person {i}", roles=frozenset(rng.sample(list(ContactRole), rng.randint(0, 1)))
            )
            for i in range(rng.randint(1, 3))
        )
        acts = []
        # A live pipeline: most deals were touched in the last weeks, a tail has gone quiet.
        quiet_days = rng.choices(
            (rng.uniform(0, 20), rng.uniform(20, 60), rng.uniform(60, 200)), (70, 20, 10)
        )[0]
        last = max(created + timedelta(hours=1), NOW - timedelta(days=quiet_days))
        span = max(1, int((last - created).total_seconds()))
        for i in range(rng.randint(6, 14)):
            kind = rng.choice(KINDS)
            outcome = rng.choice(OUTCOMES[kind])
            inbound = outcome is Outcome.REPLIED or (kind is ActivityKind.CALL and rng.random() < 0.15)
            acts.append(
                Activity(
                    f"a{n}-{i}",
                    kind,
                    Direction.INBOUND if inbound else Direction.OUTBOUND,
                    created + timedelta(seconds=rng.randrange(span)),
                    outcome,
                    (rng.choice(contacts).id,),
                )
            )
        acts.sort(key=lambda a: a.occurred_at)
        tasks: tuple[AutoTask, ...] = ()
        if rng.random() < 0.4:
            due = NOW - timedelta(days=rng.randint(0, 20))
            tasks = (
                AutoTask(
                    f"t{n}",
                    f"cf-{n:020x}",
                    "agreed_interval",
                    due - timedelta(days=1),
                    due,
                    True,
                    None,
                    TaskType.CALL,
                ),
            )
        deals.append(
            Deal(
                id=str(n),
                name=f"Deal {n}",
                pipeline_id="default",
                stage=rng.choice(STAGES),
                created_at=created,
                modified_at=created,
                owner_id=f"o{n % owners}",
                stage_entered_at=last - timedelta(days=rng.uniform(0, 60)),
                amount=float(rng.randint(1, 200)) * 1000,
                currency="EUR",
                close_date=(NOW + timedelta(days=rng.randint(-20, 120))).date(),
                next_step=NextStep(
                    rng.choice(WHATS),
                    rng.choice((None, "Budget round in April")),
                    rng.choice((None, date(2026, 3, 20), date(2026, 2, 1))),
                ),
                agreement=Agreement(
                    rng.choice((None, None, 14, 30)), rng.choice((None, Channel.CALL, Channel.EMAIL))
                ),
                qualification_score=rng.choice((None, 30.0, 60.0, 90.0, 90.0)),
                readiness=rng.choice(
                    (Readiness.UNKNOWN, Readiness.UNKNOWN, Readiness.READY, Readiness.NOT_NOW)
                ),
                contacts=contacts,
                activities=tuple(acts),
                auto_tasks=tasks,
            )
        )
    return deals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", type=Path, default=Path("config/policies"))
    parser.add_argument("--planner", action="store_true", help="also time plan() with the budgets")
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many runs")
    args = parser.parse_args()
    policy = load_policy(args.policy)
    owners = {
        f"o{i}": Owner(f"o{i}", time_zone=("Europe/Berlin", "Europe/Stockholm", "America/New_York")[i % 3])
        for i in range(200)
    }
    t0 = time.perf_counter()
    deals = generate(args.deals, args.seed)
    t1 = time.perf_counter()
    activities = sum(len(d.activities) for d in deals)
    print(f"generated {len(deals)} deals, {activities / len(deals):.1f} activities each, in {t1 - t0:.1f} s")
    gc.collect()
    gc.freeze()
    # CPU time of this process: the figure for one core, even on a machine busy with other work. The best
    # of --repeat runs, as timeit does: noise from other processes only ever adds time.
    best, actions = float("inf"), 0
    for _ in range(args.repeat):
        start = time.process_time()
        actions = 0
        for deal in deals:
            actions += len(evaluate(policy, deal, NOW, owners.get(deal.owner_id or "")).actions)
        best = min(best, time.process_time() - start)
    print(
        f"evaluate, first run: {len(deals) / best:,.0f} deals/s of CPU time ({best:.2f} s, {actions} actions)"
    )
    # Steady state: the worker's every-cycle run, after the first run's actions are in the CRM.
    settled = [
        apply_actions(d, evaluate(policy, d, NOW, owners.get(d.owner_id or "")).actions, NOW) for d in deals
    ]
    later = NOW + timedelta(minutes=15)
    gc.collect()
    gc.freeze()
    best, again = float("inf"), 0
    for _ in range(args.repeat):
        start = time.process_time()
        again = 0
        for deal in settled:
            again += len(evaluate(policy, deal, later, owners.get(deal.owner_id or "")).actions)
        best = min(best, time.process_time() - start)
    print(
        f"evaluate, steady state 15 min later: {len(settled) / best:,.0f} deals/s of CPU time "
        f"({best:.2f} s, {again} actions)"
    )
    mix = Counter(action_kind(a) for d in deals[:10_000] for a in evaluate(policy, d, NOW).actions)
    print("action mix of the first 10,000 deals:", dict(sorted(mix.items())))
    if args.planner:
        start = time.process_time()
        result = plan(policy, deals, NOW, owners)
        elapsed = time.process_time() - start
        print(
            f"plan: {len(deals) / elapsed:,.0f} deals/s ({elapsed:.2f} s, "
            f"{len(result.actions)} now, {len(result.deferred)} deferred)"
        )


if __name__ == "__main__":
    main()
