"""The whole-cycle benchmark records each CRM and size apart, so one run never erases another's figures."""

from __future__ import annotations

from pathlib import Path

from bench.bench_cycle import record, render, write_minimum


def _run(crm: str, deals: int, calls: int) -> dict[str, object]:
    row = {
        "cycle": "first (full)",
        "pulled": deals,
        "restamped": 0,
        "written": 3,
        "calls": calls,
        "by_endpoint": {"query": calls},
        "write_minimum": 1,
        "wall_s": 1.0,
        "cpu_s": 0.5,
        "peak_rss_mb": 100.0,
        "load": 1.0,
    }
    command = f"python -m bench.bench_cycle --deals {deals} --crm {crm.lower()}"
    return {
        "crm": crm,
        "deals": deals,
        "command": command,
        "measured": "2026-12-02 08:00",
        "machine": "m",
        "rows": [row],
    }


def test_a_run_replaces_only_its_own_crm_and_size(tmp_path: Path) -> None:
    results = tmp_path / "whole_cycle.json"
    record([_run("HubSpot", 10_000, 1), _run("Salesforce", 10_000, 2)], results)
    runs = record([_run("HubSpot", 10_000, 7), _run("HubSpot", 100_000, 9)], results)

    assert [(r["crm"], r["deals"], r["rows"][0]["calls"]) for r in runs] == [
        ("HubSpot", 10_000, 7),
        ("Salesforce", 10_000, 2),
        ("HubSpot", 100_000, 9),
    ]
    text = render(runs)
    assert text.startswith("## Whole worker cycle\n")
    assert "| Salesforce | 10,000 | first (full) | 10,000 (0) | 3 | 2 |" in text
    assert "- HubSpot 100,000: `python -m bench.bench_cycle --deals 100000 --crm hubspot`" in text


def test_salesforce_write_minimum_packs_5_collections_and_queries_per_call() -> None:
    """The reads before the writes in calls of 5 queries; the collections of 200 and the read-back after
    them in calls of 5 (a nurture action counts the members it wrote)."""
    applied = [("set_deal_fields", f"006{n}", 1) for n in range(1000)]  # 2 stamp queries, 5 collections
    applied += [("create_task", f"006{n}", 1) for n in range(400)]  # 2 collections
    applied += [("enrol_in_nurture", f"006{n}", 3) for n in range(200)]  # 600 members: 2 queries, 3 coll.
    # reads: 2 + 2 = 4 queries -> 1 call; writes: 5 + 2 + 3 collections and 2 read-back queries -> 3 calls
    assert write_minimum("salesforce", applied) == 1 + 3
    assert write_minimum("salesforce", []) == 0


def test_a_starter_run_renders_its_wall_time_against_calls_over_the_limit() -> None:
    run = _run("HubSpot Starter", 10_000, 1_000)
    rows = run["rows"]
    assert isinstance(rows, list)
    row = rows[0]
    assert isinstance(row, dict)
    row.update(wall_s=110.0, by_endpoint={"deals.search": 50, "calls.batch_read": 950}, refused_429=2)
    text = render([run])
    assert "| 10,000 | 1,000 (50) | 110.0 s | 100.0 s | 1.100x | 95.0 s | 1.158x | 2 | none | 1.0 |" in text
