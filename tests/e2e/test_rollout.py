"""Canary rollout through ``followup run --once`` against the HubSpot sandbox.

The policy's ``rollout`` section is edited between runs, as an admin would: first nothing is enforced
(every decision held in shadow), then one owner, then every deal, then back to the one owner. The CRM is
read through the official client after each run: the enforced cohort gets writes and the held cohort none,
widening applies the held decisions once (a run after it writes nothing new), and narrowing undoes
nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from store import StateStore
from store.schema import audit, ledger, mirror_deals
from tests.e2e.conftest import POLICY, REPO, all_records, task_keys

pytestmark = pytest.mark.slow


@dataclass
class Canary:
    sandbox: Any
    settings: Path
    policy: Path

    def roll_out(self, rollout: str) -> None:
        (self.policy / "rollout.yaml").write_text(f"rollout: {rollout}\n", encoding="utf-8")

    def run(self) -> list[dict[str, Any]]:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from cli import main; main()",
                "run",
                "--once",
                "--settings",
                str(self.settings),
            ],
            cwd=REPO,
            env={**os.environ, "ROLLOUT_TOKEN": self.sandbox.access_token},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]

    def ledger(self) -> dict[str, dict[str, Any]]:
        with self._store() as store, store.engine.connect() as c:
            rows = c.execute(
                sa.select(ledger.c.key, ledger.c.deal_id, ledger.c.kind, ledger.c.status, ledger.c.cohort)
            )
            return {r.key: dict(r._mapping) for r in rows}

    def audit_cohorts(self) -> Counter[tuple[str, str]]:
        with self._store() as store, store.engine.connect() as c:
            rows = c.execute(
                sa.select(audit.c.mode, audit.c.cohort, sa.func.count())
                .where(audit.c.rule_id != "record_rejected")
                .group_by(audit.c.mode, audit.c.cohort)
            )
            return Counter({(mode, cohort): n for mode, cohort, n in rows})

    def owners_of_deals(self) -> dict[str, str]:
        with self._store() as store, store.engine.connect() as c:
            return dict(c.execute(sa.select(mirror_deals.c.deal_id, mirror_deals.c.owner_id)).all())

    def crm_deals(self) -> dict[str, tuple[str, str]]:
        """Every deal's stage and crm-followup state as the CRM has them."""
        from hubspot import HubSpot

        api = HubSpot(access_token=self.sandbox.access_token, host=self.sandbox.base_url)
        return {
            d.id: (d.properties.get("dealstage"), d.properties.get("followup_state"))
            for d in all_records(api.crm.deals.basic_api, ["dealstage", "followup_state"])
        }

    def _store(self) -> _Open:
        return _Open(f"sqlite:///{self.settings.parent / 'state.sqlite'}")


class _Open:
    def __init__(self, url: str) -> None:
        self.store = StateStore(url)

    def __enter__(self) -> StateStore:
        return self.store

    def __exit__(self, *_: object) -> None:
        self.store.close()


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    from crm_sandbox.hubspot import running_hubspot_sandbox

    policy = tmp_path / "policy"
    shutil.copytree(POLICY, policy)
    with running_hubspot_sandbox(seed=11, deals=40, now=datetime.now(UTC).replace(microsecond=0)) as hs:
        settings = tmp_path / "settings.yaml"
        settings.write_text(
            f"store: {{url: 'sqlite:///{tmp_path / 'state.sqlite'}'}}\n"
            "logging: {level: info, format: json}\n"
            "accounts:\n"
            "  demo:\n"
            "    crm: hubspot\n"
            f"    policy: {policy}\n"
            "    apply_batch_size: 10\n"
            "    hubspot:\n"
            f"      host: '{hs.base_url}'\n"
            "      access_token_env: ROLLOUT_TOKEN\n"
            "      tier: enterprise\n"
            "      retry: {attempts: 8, initial_wait: 0.01, max_wait: 0.2, jitter_seed: 1}\n",
            encoding="utf-8",
        )
        yield Canary(hs, settings, policy)


def _written(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in rows.items() if r["status"] == "applied"}


def test_canary_rollout_enforces_its_cohort_widens_once_and_never_undoes(canary: Canary) -> None:
    # 1. A rollout that enforces for nobody: every decision is held in shadow, nothing reaches the CRM.
    canary.roll_out("{percent: 0}")
    canary.run()
    held = canary.ledger()
    assert held
    assert {(r["status"], r["cohort"]) for r in held.values()} == {("shadow", "outside")}
    assert task_keys(canary.sandbox) == Counter()
    assert set(canary.audit_cohorts()) == {("shadow", "outside")}
    owner_of = canary.owners_of_deals()
    per_owner = Counter(owner_of[r["deal_id"]] for r in held.values())
    chosen, _ = per_owner.most_common(1)[0]
    assert len(per_owner) > 1  # someone stays outside the canary
    crm_before = canary.crm_deals()

    # 2. One owner enforced: exactly that owner's held decisions are written, once; the rest stay held.
    canary.roll_out(f"{{owners: ['{chosen}']}}")
    canary.run()
    after = canary.ledger()
    mine = {k for k, r in held.items() if owner_of[r["deal_id"]] == chosen}
    assert set(_written(after)) == mine
    assert {after[k]["cohort"] for k in mine} == {"owner"}
    assert {(r["status"], r["cohort"]) for k, r in after.items() if k not in mine} == {("shadow", "outside")}
    tasks = task_keys(canary.sandbox)
    created = {k for k in mine if held[k]["kind"] == "create_task"}
    assert created
    assert tasks == Counter(dict.fromkeys(created, 1))  # each held task written once
    crm_now = canary.crm_deals()
    changed = {d for d in crm_now if crm_now[d] != crm_before.get(d)}
    assert changed <= {d for d, o in owner_of.items() if o == chosen}  # nobody else's deal was touched
    assert ("enforce", "owner") in canary.audit_cohorts()

    # 3. The same rollout again: nothing new to write (the held decisions were applied once).
    canary.run()
    assert _written(canary.ledger()) == _written(after)
    assert task_keys(canary.sandbox) == tasks

    # 4. Widened to every deal: the remaining held decisions that still hold are applied, once each.
    canary.roll_out("{percent: 100}")
    canary.run()
    widened = canary.ledger()
    assert "shadow" not in {r["status"] for r in widened.values()}
    assert set(_written(widened)) >= set(held)
    everything = task_keys(canary.sandbox)
    assert set(everything.values()) == {1}
    assert set(everything) >= {k for k, r in held.items() if r["kind"] == "create_task"}
    assert {widened[k]["cohort"] for k in set(held) - mine} == {"percent"}
    crm_widened = canary.crm_deals()
    tasks_widened = task_keys(canary.sandbox, with_status=True)

    # 5. Narrowed back to the one owner: what was applied stays as it is in the CRM and in the ledger.
    canary.roll_out(f"{{owners: ['{chosen}']}}")
    canary.run()
    narrowed = canary.ledger()
    assert {k: r["status"] for k, r in _written(widened).items()} == {
        k: narrowed[k]["status"] for k in _written(widened)
    }
    assert canary.crm_deals() == crm_widened
    assert task_keys(canary.sandbox, with_status=True) == tasks_widened
