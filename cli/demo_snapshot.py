"""``followup demo --snapshot-out FILE``: a seeded pipeline with history, to try ``followup backtest`` on.

The dataset comes from the sandbox's generator (``crm_sandbox.dataset.generate(..., history=True)``) and is
mapped into a snapshot by ``connectors.sandbox_dataset``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from connectors.sandbox_dataset import snapshot_from_dataset
from policies.codec import snapshot_to_json


def write_demo_snapshot(path: Path, *, deals: int, seed: int, now: str | None) -> int:
    """``followup demo --snapshot-out``: a seeded pipeline with history, written to ``path``; exit status."""
    from crm_sandbox.dataset import generate

    moment = datetime.now(UTC).replace(second=0, microsecond=0)
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            click.echo(f"--now: {now!r} is not an ISO date-time such as 2026-03-04T10:00:00+00:00", err=True)
            return 2
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    snapshot = snapshot_from_dataset(generate(seed, deals, moment, history=True))
    try:
        path.write_bytes(snapshot_to_json(snapshot))
    except OSError as exc:
        click.echo(f"{path}: cannot write: {exc.strerror}", err=True)
        return 2
    changes = sum(len(h.changes) for h in snapshot.history.deals.values()) if snapshot.history else 0
    taken = moment.isoformat()
    click.echo(
        f"wrote {path}: {len(snapshot.deals)} deals, {changes} recorded field changes, taken at {taken}"
    )
    click.echo(f"next: followup backtest --snapshot {path}")
    return 0
