"""``followup report`` opened in a real browser: a report of real cycles against the HubSpot sandbox.

The page is written by the command a user runs (a subprocess), opened from disk in headless Chromium
(Debian's package, driven by Playwright) and checked as a person and a screen reader would meet it: no
console error, nothing fetched from anywhere, every chart drawn, the numbers those of the state store, and
tables that sort when a header is clicked. ``FOLLOWUP_SCREENSHOTS=docs/img`` also saves the screenshot
the README shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from config.settings import read_settings_file
from policies.codec import deal_from_json
from policies.hygiene import assess
from policies.loader import load_policy
from policies.model import FollowupState
from store import StateStore
from store.schema import ledger, mirror_deals, runs
from tests.e2e.conftest import NOW, POLICY, HubSpotWorld, write_settings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubSpotWorld]:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=7, deals=80, now=NOW) as hs:
        monkeypatch.setenv("E2E_HUBSPOT_TOKEN", hs.access_token)
        settings = write_settings(
            tmp_path,
            host=hs.base_url,
            token_env="E2E_HUBSPOT_TOKEN",
            extra=f"      portal_id: {hs.portal.portal_id}\n",
        )
        yield HubSpotWorld(hs, settings, hs.portal.clock.now)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile for every test
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def _report(world: HubSpotWorld, out: Path) -> str:
    """Two cycles three days apart, then the report, as a user runs it."""
    world.cycle()
    world.advance(timedelta(days=3))
    world.cycle()
    now = world.clock().isoformat()
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "followup"),
            "report",
            "--settings",
            str(world.settings),
            "--now",
            now,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"report written: {out.resolve()}" in done.stdout
    return now


def _expected(world: HubSpotWorld, now: str) -> dict[str, int]:
    """The headline numbers, counted straight from the state store (the engine judges each next step)."""
    from datetime import datetime

    moment = datetime.fromisoformat(now)
    policy = load_policy(POLICY)
    store = StateStore(read_settings_file(world.settings).store_url())
    owners = store.owners("demo")
    try:
        with store.engine.connect() as c:
            deals = [deal_from_json(d) for (d,) in c.execute(sa.select(mirror_deals.c.data))]
            created = c.execute(
                sa.select(sa.func.count()).where(ledger.c.kind == "create_task", ledger.c.status == "applied")
            ).scalar_one()
            cycles, calls = c.execute(sa.select(sa.func.count(), sa.func.sum(runs.c.api_calls))).one()
    finally:
        store.close()
    active = [d for d in deals if not d.is_closed and d.followup_state is FollowupState.ACTIVE]
    complete = [
        d for d in active if assess(policy, d, moment, owners.get(d.owner_id or "")).step == "complete"
    ]
    nurture = [d for d in deals if not d.is_closed and d.followup_state is FollowupState.NURTURE]
    return {
        "open_deals": len(active),
        "next_step_complete": len(complete),
        "in_nurture": len(nurture),
        "tasks_created": created,
        "cycles": cycles,
        "api_calls": calls,
    }


def open_offline(browser: Any, html: Path) -> Any:
    """``html`` opened as a file: it loads with no console error and no request leaving the file."""
    page = browser.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort()
        ),
    )
    page.goto(html.resolve().as_uri())
    page.wait_for_load_state("load")
    assert errors == []
    assert requests
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    return page


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_the_report_opens_offline_draws_every_chart_and_shows_the_store_s_numbers(
    world: HubSpotWorld, browser: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "report.html"
    now = _report(world, out)
    assert out.stat().st_size < 2_000_000
    page = open_offline(browser, out)

    figures = page.locator("figure.chart")
    assert figures.count() >= 6
    for i in range(figures.count()):
        figure = figures.nth(i)
        marks = int(figure.get_attribute("data-marks") or "0")
        drawn = figure.locator("svg g.role-mark").first.locator("path").count()
        box = figure.locator("svg").bounding_box()
        assert marks > 0, figure.get_attribute("id")
        assert drawn == marks, figure.get_attribute("id")
        assert box is not None
        assert (box["width"] > 100, box["height"] > 40) == (True, True)
        table_id = figure.locator("figcaption a").get_attribute("href")
        assert table_id
        assert page.locator(f"table{table_id}").count() == 1  # every chart has its table

    expected = _expected(world, now)
    shown = {key: _number(page.locator(f'[data-key="{key}"] .value').inner_text()) for key in expected}
    assert shown == expected
    open_column = page.locator("#table-next-step tbody td:nth-child(3)").all_inner_texts()
    assert sum(_number(t) for t in open_column) == expected["open_deals"]

    deal_link = page.locator("#table-list-stage tbody tr").first.locator("td").first.locator("a")
    portal = world.sandbox.portal.portal_id
    assert (deal_link.get_attribute("href") or "").startswith(
        f"https://app.hubspot.com/contacts/{portal}/deal/"
    )
    evidence = (
        page.locator("#table-list-stage tbody tr").first.locator('a:text("verdicts")').get_attribute("href")
    )
    assert evidence
    assert page.locator(f"article{evidence} table.verdicts tbody tr").count() == 8
    assert "followup explain --settings" in page.locator(f"article{evidence} .cmd").inner_text()

    if target := os.environ.get("FOLLOWUP_SCREENSHOTS"):
        page.screenshot(path=str(Path(target) / "report.png"))


def test_a_table_sorts_when_its_header_is_clicked(world: HubSpotWorld, browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    _report(world, out)
    page = browser.new_page()
    page.goto(out.resolve().as_uri())
    header = page.locator('#table-list-stage th[data-key="days_in_stage"]')
    keys = [h.get_attribute("data-key") for h in page.locator("#table-list-stage th").all()]
    cells = page.locator(f"#table-list-stage tbody td:nth-child({keys.index('days_in_stage') + 1})")

    def column() -> list[int]:
        return [_number(t) for t in cells.all_inner_texts()]

    assert len(set(column())) > 1
    header.click()
    first = column()
    assert header.get_attribute("aria-sort") in ("ascending", "descending")
    assert first in (sorted(first), sorted(first, reverse=True))
    header.click()
    second = column()
    assert second == sorted(first, reverse=first == sorted(first))  # the other direction
    header.focus()
    page.keyboard.press("Enter")  # the keyboard sorts too, back to the first direction
    assert column() == first
