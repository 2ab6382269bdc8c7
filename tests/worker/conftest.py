"""Builders for worker tests: a tiny CRM in memory, a temp SQLite store, and a small hand-written policy.

The hand-written ``decide`` stands in for a policy where a test needs exact control over the plan: every
open deal without an open follow-up task gets one (time-based: due the next day), deals idle for 60 days
are closed lost. Tests of the real engine end to end live in tests/e2e.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.memory import InMemoryCrm
from policies.model import (
    Action,
    ChangeStage,
    CreateTask,
    Deal,
    Decision,
    Explanation,
    Owner,
    Pipeline,
    Plan,
    RuleVerdict,
    Stage,
    make_key,
)
from store import StateStore
from sync.cycle import Cycle, CycleOptions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

OPEN = Stage("open", "Open", "sales", 0)
LOST = Stage("lost", "Closed lost", "sales", 9, is_closed=True)
PIPELINE = Pipeline("sales", "Sales", (OPEN, LOST))
OWNERS = (Owner("o1", "Ann"), Owner("o2", "Bo"))


def make_deal(i: int, *, owner: str = "o1", modified: datetime | None = None, stage: Stage = OPEN) -> Deal:
    when = modified or T0 - timedelta(days=3)
    return Deal(
        id=f"D{i:04d}",
        name=f"Deal {i}",
        pipeline_id="sales",
        stage=stage,
        created_at=when - timedelta(days=30),
        modified_at=when,
        owner_id=owner,
    )


def toy_decide(deals: Sequence[Deal], now: datetime, owners: Mapping[str, Owner]) -> Plan:
    """A small but real policy: follow-up tasks for open deals, closing deals idle for 60 days."""
    decisions = []
    actions: list[Action] = []
    for deal in deals:
        if deal.is_closed:
            continue
        mine: list[Action] = []
        verdicts = []
        if now - deal.modified_at >= timedelta(days=60):
            mine.append(
                ChangeStage(
                    key=make_key("idle", deal.id),
                    deal_id=deal.id,
                    rule_id="close_idle",
                    explanation=Explanation("idle for 60 days"),
                    pipeline_id="sales",
                    stage_id="lost",
                    close_reason="no response",
                    expected_modified_at=deal.modified_at,
                )
            )
            verdicts.append(RuleVerdict("close_idle", True, "idle for 60 days"))
        elif not any(t.is_open and t.rule_id == "follow_up" for t in deal.auto_tasks):
            due = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
            mine.append(
                CreateTask(
                    key=make_key("follow_up", deal.id, due.date().isoformat()),
                    deal_id=deal.id,
                    rule_id="follow_up",
                    explanation=Explanation("no open follow-up"),
                    owner_id=deal.owner_id,
                    subject=f"Follow up {deal.name}",
                    body="Call them.",
                    due_at=due,
                )
            )
            verdicts.append(RuleVerdict("follow_up", True, "no open follow-up task"))
        else:
            verdicts.append(RuleVerdict("follow_up", False, "a follow-up task is open"))
        actions.extend(mine)
        decisions.append(Decision(deal.id, tuple(mine), tuple(verdicts)))
    return Plan(actions=tuple(actions), decisions=tuple(decisions))


class Clock:
    """A settable clock for the cycle and the CRM."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


POSTGRES_URL_ENV = "FOLLOWUP_TEST_POSTGRES_URL"  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> str:
    """A PostgreSQL database of this test process's own (xdist workers must not share one)."""
    from sqlalchemy import create_engine, make_url, text

    base = os.environ.get(POSTGRES_URL_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_URL_ENV} to run the state store tests on PostgreSQL too")
    name = f"followup_test_{worker_id}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """The state store on SQLite (always) and PostgreSQL (when a server is given), clean for each test."""
    if request.param == "sqlite":
        state = StateStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    else:
        from sqlalchemy import create_engine, text

        url = request.getfixturevalue("postgres_url")
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        state = StateStore(url)
    yield state
    state.close()


@pytest.fixture
def crm(clock: Clock) -> InMemoryCrm:
    return InMemoryCrm(
        owners=OWNERS,
        pipelines=(PIPELINE,),
        deals=[make_deal(i, owner="o1" if i % 2 else "o2") for i in range(1, 11)],
        clock=clock,
        page_size=4,
    )


@pytest.fixture
def make_cycle(crm: InMemoryCrm, store: StateStore, clock: Clock) -> Callable[..., Cycle]:
    def build(**overrides: Any) -> Cycle:  # any field of Cycle
        values: dict[str, Any] = {
            "account": "acme",
            "connector": crm,
            "store": store,
            "decide": toy_decide,
            "clock": clock,
            "holder": "test-host:1",
            "options": CycleOptions(apply_batch_size=3, evaluate_chunk=4),
        }
        values.update(overrides)
        return Cycle(**values)

    return build
