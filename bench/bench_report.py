"""``followup report`` at scale: render time, peak memory and file size for 100,000 deals and a month.

A real cycle of 100,000 deals against a sandbox takes minutes and gives one day of history, so the state
store is written synthetically, in the shapes the worker writes (same tables, same JSON):

* the mirror: ``bench.bench_engine.generate`` deals (about 10 activities each, 200 owners in 8 teams,
  40% with an open crm-followup task), written with ``StateStore.write_mirror``;
* a month of decisions: every day 3% of the deals get an action (tasks by five rules, closes with each
  reason, stops and nurture enrolments), each with its audit row, plus budget deferrals; every action is
  ``applied`` except a few failures (about 90,000 ledger and 110,000 audit rows);
* the runs of a 15-minute schedule for 30 days (2,880 cycles) with their API calls.

Then the report is built and rendered as ``followup report`` does (``build_page`` + ``render_html``), in a
fresh process, timing the whole and each part. Run:

    .venv/bin/python -m bench.bench_report [--deals 100000] [--days 30] [--no-write]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.bench_engine import NOW, generate
from bench.harness import machine, write_section
from policies.codec import action_to_dict
from policies.loader import load_policy
from policies.model import (
    Action,
    CloseReason,
    CloseTask,
    CreateTask,
    DealField,
    Explanation,
    FollowupState,
    Owner,
    SetDealFields,
    action_kind,
    make_key,
)
from store import StateStore
from store.database import dumps
from store.schema import audit, ledger, runs

SECTION = "## Report"
POLICY = Path(__file__).resolve().parent.parent / "config" / "policies"
RULES = ("agreed_interval", "next_step", "qualification", "decision_maker", "nurture")
WHY = Explanation("bench", ())


def _fill(store: StateStore, deals: int, days: int) -> dict[str, int]:
    rng = random.Random(5)
    owners = [
        Owner(f"o{i}", f"Owner {i}", time_zone="Europe/Berlin", team=f"Team {i % 8}") for i in range(200)
    ]
    store.record_owners("bench", owners, NOW)
    generated = generate(deals, seed=3)
    for start in range(0, len(generated), 5000):
        store.write_mirror("bench", generated[start : start + 5000])
    ids = [d.id for d in generated]
    del generated
    ledger_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    for day in range(days):
        at = NOW - timedelta(days=days - day, hours=-9)
        for deal_id in rng.sample(ids, len(ids) * 3 // 100):
            action = _action(rng, deal_id, day)
            status = "failed" if rng.random() < 0.01 else "applied"
            ledger_rows.append(_ledger_row(action, status, at))
            audit_rows.append(_audit_row(action, "planned", at))
            if rng.random() < 0.2:
                audit_rows.append(_audit_row(action, "deferred", at))
    with store.engine.begin() as c:
        for start in range(0, len(ledger_rows), 5000):
            c.execute(sa.insert(ledger), ledger_rows[start : start + 5000])
        for start in range(0, len(audit_rows), 5000):
            c.execute(sa.insert(audit), audit_rows[start : start + 5000])
        cycles = [
            {
                "id": f"run{n}",
                "account": "bench",
                "holder": "bench:1",
                "started_at": NOW - timedelta(minutes=15 * n),
                "finished_at": NOW - timedelta(minutes=15 * n) + timedelta(seconds=rng.uniform(20, 90)),
                "status": "ok" if rng.random() < 0.98 else "retry_later",
                "shadow": False,
                "counts": dumps({"pulled": rng.randint(0, 500), "rejected": int(rng.random() < 0.05)}),
                "api_calls": rng.randint(10, 60),
                "error": None,
                "api_daily_limit": 1_000_000,
            }
            for n in range(days * 96)
        ]
        c.execute(sa.insert(runs), cycles)
    store.store_batch("bench", "run0", [], (), {"after": "x"}, NOW - timedelta(minutes=15))
    return {"ledger": len(ledger_rows), "audit": len(audit_rows), "runs": len(cycles)}


def _action(rng: random.Random, deal_id: str, day: int) -> Action:
    pick = rng.random()
    key = make_key("bench", deal_id, str(day))
    if pick < 0.6:
        return CreateTask(
            key=key,
            deal_id=deal_id,
            rule_id=rng.choice(RULES),
            explanation=WHY,
            owner_id=None,
            subject="s",
            body="b",
            due_at=NOW,
        )
    if pick < 0.85:
        reason = rng.choice(list(CloseReason))
        return CloseTask(
            key=key,
            deal_id=deal_id,
            rule_id="task_expiry",
            explanation=WHY,
            task_id="t",
            task_key="k",
            reason=reason,
        )
    state = rng.choice((FollowupState.STOPPED, FollowupState.NURTURE, FollowupState.ACTIVE))
    fields = {
        DealField.FOLLOWUP_STATE: state.value,
        DealField.FOLLOWUP_REASON: "No response after repeated outreach",
    }
    return SetDealFields(
        key=key, deal_id=deal_id, rule_id=rng.choice(("stop", "nurture")), explanation=WHY, fields=fields
    )


def _ledger_row(action: Action, status: str, at: Any) -> dict[str, Any]:
    return {
        "account": "bench",
        "key": action.key,
        "deal_id": action.deal_id,
        "rule_id": action.rule_id,
        "kind": action_kind(action),
        "status": status,
        "action": dumps(action_to_dict(action)),
        "crm_ids": "[]",
        "attempts": 1,
        "error": "VALIDATION_ERROR" if status == "failed" else None,
        "run_id": "run1",
        "created_at": at,
        "updated_at": at,
    }


def _audit_row(action: Action, outcome: str, at: Any) -> dict[str, Any]:
    explanation = {
        "reason": "bench reason",
        "evidence": [["unanswered touches", "3"], ["last inbound", "2026-02-01"]],
    }
    return {
        "account": "bench",
        "run_id": "run1",
        "at": at,
        "deal_id": action.deal_id,
        "rule_id": action.rule_id,
        "fired": True,
        "mode": "enforce",
        "outcome": outcome,
        "action_keys": dumps([action.key]),
        "explanation": dumps(explanation),
    }


def measure(deals: int, days: int) -> dict[str, Any]:
    from report import AccountSource, ReportRequest, build_page, render_html

    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    store = StateStore(f"sqlite:///{folder / 'state.sqlite'}")
    started = time.perf_counter()
    rows = _fill(store, deals, days)
    filled = time.perf_counter() - started
    source = AccountSource(
        name="bench",
        crm="hubspot",
        policy=load_policy(POLICY),
        shadow=False,
        deal_url="https://app.hubspot.com/contacts/1/deal/{id}",
        budget_share=0.5,
        explain="followup explain --settings settings.yaml --account bench --deal {id}",
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    page = build_page(ReportRequest(store, (source,), NOW - timedelta(days=days), NOW))
    built = time.perf_counter() - started
    html = render_html(page)
    total = time.perf_counter() - started
    out = folder / "report.html"
    out.write_text(html, encoding="utf-8")
    store.close()
    return {
        "deals": deals,
        "days": days,
        **rows,
        "fill_s": filled,
        "build_s": built,
        "total_s": total,
        "size_mb": out.stat().st_size / 2**20,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before,
        "listed": len(page.deals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    r = measure(args.deals, args.days)
    print(r, file=sys.stderr)
    section = (
        f"{SECTION}\n\n"
        f"`followup report` on a synthetic state store (see `bench/bench_report.py` for how it is written): "
        f"{r['deals']:,} mirrored deals, {r['days']} days with {r['ledger']:,} ledger rows, {r['audit']:,} "
        f"audit rows and {r['runs']:,} runs; SQLite on disk. One run of what the command "
        f"does (`build_page` + `render_html`, {r['listed']} deals with evidence; a mirror this large "
        "is read by two processes).\n\n"
        "| deals | days | build the numbers | render the page | total | file size | peak RSS |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {r['deals']:,} | {r['days']} | {r['build_s']:.1f} s | {r['total_s'] - r['build_s']:.1f} s | "
        f"{r['total_s']:.1f} s | {r['size_mb']:.1f} MB | {r['rss_mb']:,.0f} MB |\n\n"
        "Targets: under 30 s and under 10 MB. The mirror is read once (every deal's JSON decoded and "
        "judged by the engine's hygiene rules); ledger, audit and runs are grouped in SQL. Peak RSS "
        f"includes generating the synthetic deals in the same process ({r['rss_before_mb']:,.0f} MB "
        "before the report).\n\n"
        f"Machine: {machine()}. Command: `.venv/bin/python -m bench.bench_report`.\n"
    )
    print(section)
    if not args.no_write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
