"""What the report reads: the state store, and per account what only the settings know.

The command (``cli/report_command.py``) builds these from the settings file; the builders never see
connector options or secrets, only a record-URL template and the budget share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from policies.model import Owner
from policies.policy import Policy
from report.model import Cell, Column
from store import StateStore


@dataclass(frozen=True)
class AccountSource:
    name: str
    crm: str  # hubspot | salesforce
    policy: Policy
    shadow: bool  # the account runs in shadow mode now (settings or policy)
    deal_url: str | None  # a template with {id}: the deal's record page in the CRM, when it has one
    budget_share: float | None  # crm-followup's share of the CRM's daily API limit (settings)
    explain: str  # the ``followup explain`` command line with {id} for the deal id

    def url_for(self, deal_id: str) -> str | None:
        return self.deal_url.format(id=quote(deal_id, safe="")) if self.deal_url else None


@dataclass(frozen=True)
class ReportRequest:
    store: StateStore
    accounts: tuple[AccountSource, ...]
    since: datetime
    now: datetime
    deal_rows: int = 100  # rows per deal list; every count covers all deals
    parallel_from: int | None = 20_000  # mirrors this large are read by two processes; None: never

    @property
    def dialect(self) -> str:
        return self.store.engine.dialect.name

    @property
    def multi(self) -> bool:
        return len(self.accounts) > 1

    @property
    def account_column(self) -> tuple[Column, ...]:
        """A table's account column: there only when the report covers several accounts."""
        return (Column("account"),) if self.multi else ()

    def account_cell(self, account: str) -> tuple[Cell, ...]:
        """The row's cell under ``account_column``."""
        return (Cell(account),) if self.multi else ()

    def deal_cell(self, account: str, deal_id: str) -> Cell:
        """The deal id, linked to the deal's record page in its CRM when the account has one."""
        url = next(a for a in self.accounts if a.name == account).url_for(deal_id)
        return Cell(deal_id, href=url, external=True) if url else Cell(deal_id)


PARALLEL_FROM = 20_000


def parallel_from() -> int | None:
    """When ``followup report`` reads the mirror with two processes: from 20,000 deals, if a core is free.

    On a machine whose run queue already fills its cores (1-minute load average at least the number of
    cores) a second process only adds the cost of splitting and merging (measured: 18-23 s of CPU against
    15 s in one process for 100,000 deals at a load of 5-7); there one process is faster.
    """
    cores = os.cpu_count() or 1
    if cores < 2 or os.getloadavg()[0] >= cores:
        return None
    return PARALLEL_FROM


def owner_label(owners: dict[str, Owner], owner_id: str | None) -> str:
    if not owner_id:
        return "(no owner)"
    owner = owners.get(owner_id)
    return owner.name if owner is not None and owner.name else f"owner {owner_id}"


def team_label(owners: dict[str, Owner], owner_id: str | None) -> str:
    owner = owners.get(owner_id or "")
    return owner.team if owner is not None and owner.team else "(no team)"
