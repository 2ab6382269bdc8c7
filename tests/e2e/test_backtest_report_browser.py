"""``followup report --backtest FILE.json`` in a real browser, from a real ``followup backtest --json``.

The backtest runs over the bundled history with two variants (a sweep), as a user runs it; its JSON is
rendered by the command and opened from disk in headless Chromium: no console error, nothing fetched,
every chart drawn, the numbers those of the JSON, and a table that sorts when its header is clicked.
``FOLLOWUP_SCREENSHOTS=docs/img`` also saves the screenshot docs/report.md shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO
from tests.e2e.test_report_browser import browser, open_offline

pytestmark = pytest.mark.slow

FOLLOWUP = str(Path(sys.executable).parent / "followup")
__all__ = ["browser"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FOLLOWUP, *args], capture_output=True, text=True, timeout=300, check=False, cwd=REPO
    )


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("backtest")
    done = _run(
        "backtest",
        "--snapshot",
        str(REPO / "config" / "examples" / "history.json"),
        "--sweep",
        "stop.max_unanswered_touches=4,8",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    path = folder / "results.json"
    path.write_text(done.stdout, encoding="utf-8")
    out = folder / "backtest.html"
    rendered = _run("report", "--backtest", str(path), "--out", str(out))
    assert rendered.returncode == 0, rendered.stderr
    assert f"report written: {out.resolve()}" in rendered.stdout
    return out, json.loads(done.stdout)


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("%", "").strip())


def _rows(page: Any, table: str) -> list[dict[str, str]]:
    keys = [h.get_attribute("data-key") for h in page.locator(f"#{table} thead th").all()]
    return [
        dict(zip(keys, row.locator("td").all_inner_texts(), strict=True))
        for row in page.locator(f"#{table} tbody tr").all()
    ]


def test_the_backtest_report_opens_offline_draws_its_charts_and_shows_the_json_s_numbers(
    backtest: tuple[Path, dict[str, Any]], browser: Any
) -> None:
    out, report = backtest
    assert out.stat().st_size < 2_000_000
    page = open_offline(browser, out)

    figures = page.locator("figure.chart")
    assert figures.count() == 6  # stops, false kills, tasks per day, completeness, compliance, API calls
    for i in range(figures.count()):
        figure = figures.nth(i)
        marks = int(figure.get_attribute("data-marks") or "0")
        drawn = figure.locator("svg g.role-mark").first.locator("path").count()
        assert marks > 0, figure.get_attribute("id")
        assert drawn == marks, figure.get_attribute("id")
        table_id = figure.locator("figcaption a").get_attribute("href")
        assert page.locator(f"table{table_id}").count() == 1

    variants = report["variants"]
    first = variants[0]["account"]
    tiles = {
        key: _number(page.locator(f'[data-key="{key}"] .value').inner_text())
        for key in ("variants", "false_kills", "true_stops", "tasks_created", "agreements")
    }
    assert tiles == {
        "variants": len(variants),
        "false_kills": first["stops"]["false_kills"],
        "true_stops": first["stops"]["true_stops"],
        "tasks_created": first["busy_work"]["tasks_created"],
        "agreements": report["compliance"]["account"]["agreements"],
    }
    shown = {r["variant"]: r for r in _rows(page, "table-variants")}
    for variant in variants:
        row, stops, busy = (
            shown[variant["name"]],
            variant["account"]["stops"],
            variant["account"]["busy_work"],
        )
        for key in ("stopped", "nurtured", "false_kills", "false_kills_won", "true_stops", "unresolved"):
            assert _number(row[key]) == stops[key], (variant["name"], key)
        assert _number(row["false_kill_amount"]) == stops["false_kill_amount"]
        assert _number(row["days_saved"]) == pytest.approx(stops["days_saved"], abs=0.05)
        assert _number(row["tasks_created"]) == busy["tasks_created"]
        assert _number(row["tasks_mean"]) == pytest.approx(busy["per_working_day"]["mean"], abs=0.005)
        assert _number(row["next_step_completeness"]) == pytest.approx(
            100 * variant["account"]["next_step_completeness"], abs=0.05
        )
    kills = _rows(page, "table-false-kills")
    assert len(kills) == sum(len(v["false_kills"]) for v in variants)
    assert {(k["variant"], k["deal_id"]) for k in kills} == {
        (v["name"], s["deal_id"]) for v in variants for s in v["false_kills"]
    }
    account = next(r for r in _rows(page, "table-compliance") if r["group"] == "account")
    for verdict in ("agreements", "early", "on_time", "late", "customer_first", "never", "pending"):
        assert _number(account[verdict]) == report["compliance"]["account"][verdict]
    api = {(r["variant"], r["crm"]): _number(r["total"]) for r in _rows(page, "table-backtest-api")}
    assert api == {
        (v["name"], crm): v["api_calls"][crm]["total"] for v in variants for crm in ("hubspot", "salesforce")
    }
    assert page.locator("#deals").count() == 0  # no deal evidence section: a backtest has no live deals
    if target := os.environ.get("FOLLOWUP_SCREENSHOTS"):
        page.screenshot(path=str(Path(target) / "backtest-report.png"))


def test_a_backtest_table_sorts_when_its_header_is_clicked(
    backtest: tuple[Path, dict[str, Any]], browser: Any
) -> None:
    out, _ = backtest
    page = browser.new_page()
    page.goto(out.resolve().as_uri())
    keys = [h.get_attribute("data-key") for h in page.locator("#table-false-kills th").all()]
    header = page.locator('#table-false-kills th[data-key="amount"]')
    cells = page.locator(f"#table-false-kills tbody td:nth-child({keys.index('amount') + 1})")

    def column() -> list[float]:
        return [_number(t) if t.strip() != "–" else -1 for t in cells.all_inner_texts()]

    assert len(set(column())) > 1
    header.click()
    first = column()
    assert first in (sorted(first), sorted(first, reverse=True))
    header.click()
    assert column() == sorted(first, reverse=first == sorted(first))
    assert header.get_attribute("aria-sort") in ("ascending", "descending")


def test_a_file_that_is_not_a_backtest_is_refused_with_its_place(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "crm-followup-backtest/1",\n "variants": [}', encoding="utf-8")
    done = _run("report", "--backtest", str(broken), "--out", str(tmp_path / "r.html"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"{broken}:2:15: ")
    other = tmp_path / "plan.json"
    other.write_text('{\n  "format": "crm-followup-backtest/1",\n  "variants": []\n}\n', encoding="utf-8")
    done = _run("report", "--backtest", str(other), "--out", str(tmp_path / "r.html"))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert f"{other}:3:3: variants: [] should be non-empty" in lines
    assert any(
        line.startswith(f"{other}:1:1: (top level): 'snapshot' is a required property") for line in lines
    )
    assert not (tmp_path / "r.html").exists()
    both = _run("report", "--backtest", str(other), "--settings", str(other))
    assert both.returncode == 2
    assert "give --settings (the live report) or --backtest FILE.json" in both.stderr
