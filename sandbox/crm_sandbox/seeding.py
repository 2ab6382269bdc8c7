"""A sandbox's starting state: the seeded dataset and the clock that starts at its "now".

Without a pinned ``now`` the dataset is drawn as of the current hour and the clock is real time; with one,
the clock starts there and ticks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from crm_sandbox.clock import SandboxClock
from crm_sandbox.dataset import Dataset, generate, generate_or_load

__all__ = ["default_now", "seeded_start"]


def default_now() -> datetime:
    """The current hour: a dataset "now" that is recent yet lets a cache be reused for an hour."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def seeded_start(
    seed: int,
    deals: int,
    now: datetime | None,
    *,
    dataset: Dataset | None = None,
    data_dir: Path | None = None,
) -> tuple[Dataset, SandboxClock]:
    """``dataset`` (or one generated, or loaded from the ``data_dir`` cache) and a clock pinned to ``now``."""
    clock = SandboxClock()
    if dataset is None:
        dataset_now = now or default_now()
        dataset = (
            generate_or_load(seed, deals, dataset_now, data_dir)
            if data_dir
            else generate(seed, deals, dataset_now)
        )
    if now is not None:
        clock.set(now, ticking=True)
    return dataset, clock
