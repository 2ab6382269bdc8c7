"""Canary enforcement: which deals a policy's ``rollout`` enforces, and which it holds in shadow.

A deal's **cohort** names why it is enforced or not:

    all        no rollout in force: every deal in the account's mode (enforce, or shadow when the account
               or the policy says so)
    owner      enforced: its owner is named in ``rollout.owners``
    team       enforced: its owner's team is named in ``rollout.teams``
    pipeline   enforced: its pipeline is named in ``rollout.pipelines``
    percent    enforced: it falls in ``rollout.percent`` of deals
    outside    held in shadow by the rollout (decided, audited, recorded; never written)

The percentage is a **stable hash** of the account and the deal id (SHA-256, not Python's salted
``hash``): the same deal is in the same cohort in every cycle, process and machine, and raising the
percentage only adds deals (a deal in at 10 % is in at 20 %). Buckets are hundredths of a percent.

Pure like the rest of ``policies``: no clock, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from policies.model import Deal, Owner
from policies.policy_file import Rollout

CohortName = Literal["all", "owner", "team", "pipeline", "percent", "outside"]
ENFORCED_COHORTS: tuple[CohortName, ...] = ("owner", "team", "pipeline", "percent")
BUCKETS = 10_000  # a bucket is a hundredth of a percent


@dataclass(frozen=True, slots=True)
class Cohort:
    name: CohortName
    enforced: bool

    @property
    def mode(self) -> Literal["enforce", "shadow"]:
        return "enforce" if self.enforced else "shadow"


ENFORCE_ALL = Cohort("all", True)
SHADOW_ALL = Cohort("all", False)
OUTSIDE = Cohort("outside", False)
_ENFORCED = {name: Cohort(name, True) for name in ENFORCED_COHORTS}


def bucket(account: str, deal_id: str) -> int:
    """The deal's place in ``0..9999``, the same wherever and whenever it is computed."""
    digest = hashlib.sha256(f"{account}\x00{deal_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_percent(percent: float, account: str, deal_id: str) -> bool:
    return bucket(account, deal_id) < round(percent * BUCKETS / 100)


def cohort(rollout: Rollout | None, account: str, deal: Deal, owner: Owner | None, *, shadow: bool) -> Cohort:
    """The deal's cohort. ``shadow``: the account runs in shadow (its settings or the policy's ``mode``),
    which holds every deal in shadow whatever the rollout says."""
    if shadow:
        return SHADOW_ALL
    if rollout is None:
        return ENFORCE_ALL
    if deal.owner_id is not None and deal.owner_id in rollout.owners:
        return _ENFORCED["owner"]
    if rollout.teams and owner is not None and owner.team is not None and owner.team in rollout.teams:
        return _ENFORCED["team"]
    if deal.pipeline_id in rollout.pipelines:
        return _ENFORCED["pipeline"]
    if rollout.percent and in_percent(rollout.percent, account, deal.id):
        return _ENFORCED["percent"]
    return OUTSIDE
