"""Tasks per deal and per owner: what the first cycle hands the reps (the busy-work figure of issue 16).

Two measurements, both with the shipped policy (``config/policies``):

* ``--snapshot FILE``: ``followup plan`` over a snapshot (default: the bundled example); new tasks counted
  whether they go out now or are deferred by a budget (a deferred task is still work for the rep);
* ``--crm hubspot|salesforce``: the demo's first cycle, for real: ``followup demo --keep DIR`` in a
  subprocess (seeded sandbox, setup, one cycle through the official client), then the tasks read back from
  its state store's ledger (create_task actions the CRM applied), each attributed to its deal's owner.

``--separate`` runs both with ``tasks.combine: false`` (one task per rule, the figure before combining).

Run:

    .venv/bin/python -m bench.task_counts [--snapshot FILE] [--crm hubspot] [--crm salesforce] [--separate]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from policies.codec import snapshot_from_json
from policies.loader import load_policy
from policies.model import CreateTask
from policies.planner import plan

POLICY = Path("config/policies")
SNAPSHOT = Path("config/examples/snapshot.json")
FOLLOWUP = str(Path(sys.executable).with_name("followup"))  # the command of this environment


def distribution(tasks_per: Mapping[str, int]) -> str:
    """``n deals: 1 task x a, 2 tasks x b, ...; max m``."""
    spread = Counter(tasks_per.values())
    parts = ", ".join(f"{k} task{'s' if k != 1 else ''} x {spread[k]}" for k in sorted(spread))
    return f"{len(tasks_per)} with tasks ({parts}); max {max(tasks_per.values(), default=0)}"


def report(title: str, creates: Iterable[tuple[str, str]]) -> None:
    """Print the per-deal and per-owner counts of ``(deal id, owner id)`` pairs, one per new task."""
    pairs = list(creates)
    per_deal = Counter(deal for deal, _ in pairs)
    per_owner = Counter(owner for _, owner in pairs)
    several = sum(1 for n in per_deal.values() if n > 1)
    print(f"{title}: {len(pairs)} new tasks")
    print(f"  per deal:  {distribution(per_deal)}; {several} deal(s) with more than one")
    print("  per owner: " + ", ".join(f"{o or '(none)'} {n}" for o, n in sorted(per_owner.items())))


def separate_policy(folder: Path) -> Path:
    """A copy of the shipped policy with ``tasks.combine: false`` in ``folder``."""
    copy = folder / "policies"
    shutil.copytree(POLICY, copy)
    main = copy / "followup.yaml"
    text = main.read_text(encoding="utf-8")
    if "combine: true" not in text:
        raise SystemExit(f"{main}: no `combine: true` to switch off")
    main.write_text(text.replace("combine: true", "combine: false"), encoding="utf-8")
    return copy.resolve()


def snapshot_counts(path: Path, policy_path: Path) -> None:
    snapshot = snapshot_from_json(path.read_bytes())
    now = snapshot.taken_at or datetime.now(UTC)
    owners = {o.id: o for o in snapshot.owners}
    result = plan(load_policy(policy_path), snapshot.deals, now, owners)
    creates = [a for a in result.actions if isinstance(a, CreateTask)]
    creates += [d.action for d in result.deferred if isinstance(d.action, CreateTask)]
    report(f"plan {path}", ((a.deal_id, a.owner_id or "") for a in creates))


def demo_counts(crm: str, seed: int, deals: int, policy_path: Path | None) -> None:
    """Run ``followup demo`` as a user does (a subprocess), then read its state store: the create_task
    actions the CRM applied in its one cycle, each attributed to its deal's owner."""
    from store import StateStore

    with tempfile.TemporaryDirectory(prefix="task-counts-") as tmp:
        folder = Path(tmp)
        command = [FOLLOWUP, "demo", "--crm", crm, "--seed", str(seed), "--deals", str(deals)]
        command += ["--tasks", "0", "--keep", str(folder)]
        if policy_path is not None:
            command += ["--policy", str(policy_path)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"followup demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        store = StateStore(f"sqlite:///{folder / 'state.sqlite'}")
        try:
            owner_of = {d.id: d.owner_id or "" for chunk in store.iter_mirror("demo", 5000) for d in chunk}
            applied = [e for e in store.ledger("demo") if e.kind == "create_task" and e.status == "applied"]
        finally:
            store.close()
    combine = "tasks.combine: false" if policy_path is not None else "shipped policy"
    print(f"demo cycle {crm} seed {seed}, {deals} deals, {combine}")
    report(f"  first cycle ({crm})", ((e.deal_id, owner_of.get(e.deal_id, "")) for e in applied))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--crm", choices=("hubspot", "salesforce"), action="append", default=[])
    parser.add_argument("--seed", type=int, default=7, help="the demo's default")
    parser.add_argument("--deals", type=int, default=120, help="the demo's default")
    parser.add_argument("--separate", action="store_true", help="tasks.combine: false (one task per rule)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="task-counts-policy-") as tmp:
        separate = separate_policy(Path(tmp)) if args.separate else None
        snapshot_counts(args.snapshot, separate or POLICY)
        for crm in args.crm:
            demo_counts(crm, args.seed, args.deals, separate)


if __name__ == "__main__":
    main()
