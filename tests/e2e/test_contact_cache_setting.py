"""``hubspot.contact_cache_size`` as a user sets it: ``followup plan`` and ``followup validate`` in a process.

A bound far below the contacts of the portal, with small pages, makes the pull read shared contacts again
(the ``hubspot_full_pull_done`` log line counts them) and plans exactly what the default plans; a bound
below one is refused at its place in the settings file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import NOW, REPO, write_settings

pytestmark = pytest.mark.slow


def _followup(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _plan(tmp_path: Path, base_url: str, token: str, extra: str) -> tuple[Any, dict[str, Any]]:
    folder = tmp_path / (extra.strip().replace(" ", "").replace(":", "-").replace("\n", "_") or "default")
    folder.mkdir()
    settings = write_settings(folder, host=base_url, token_env="E2E_CACHE_TOKEN", extra=extra)
    settings.write_text(
        settings.read_text().replace("logging: {level: warning, format: json}", "logging: {level: info}")
    )
    result = _followup("plan", "--settings", str(settings), "--json", env={"E2E_CACHE_TOKEN": token})
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    (done,) = [e for e in events if e.get("event") == "hubspot_full_pull_done"]
    return json.loads(result.stdout), done


def test_a_small_contact_cache_reads_contacts_again_and_plans_the_same(tmp_path: Path) -> None:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    with running_hubspot_sandbox(seed=7, deals=60, now=NOW) as hs:
        default_plan, default_pull = _plan(tmp_path, hs.base_url, hs.access_token, "")
        small_plan, small_pull = _plan(
            tmp_path,
            hs.base_url,
            hs.access_token,
            "      deals_per_batch: 5\n      contact_cache_size: 2\n",
        )
    assert default_pull["contact_cache_size"] == 20_000
    assert small_pull["contact_cache_size"] == 2
    assert small_pull["contacts_read"] > default_pull["contacts_read"]  # shared contacts read again
    assert _intents(small_plan) == _intents(default_plan)  # keys never contain the moment of planning
    assert default_plan["actions"]


def _intents(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["key"], a["deal_id"]) for a in plan["actions"]]


def test_a_contact_cache_bound_below_one_is_refused_at_its_place(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("stages:\n  default: {lost: closedlost}\n")
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "accounts:\n  acme:\n    crm: hubspot\n    policy: policy.yaml\n"
        "    hubspot:\n      access_token_env: X\n      contact_cache_size: 0\n"
    )
    refused = _followup("validate", str(settings))
    assert refused.returncode == 2
    place = f"{settings}:7:7: accounts.acme.hubspot.contact_cache_size"
    assert refused.stderr.splitlines() == [f"{place}: Input should be greater than or equal to 1"]
