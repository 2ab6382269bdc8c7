"""The whole-cycle benchmark records each CRM and size apart, so one run never erases another's figures."""

from __future__ import annotations

from pathlib import Path

from bench.bench_cycle import record, render


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
