"""``followup status``: every account of a settings file as the shared state store sees it, for operators.

One row per account: its last cycle (status, when), when it is next due, which worker holds it now, how old
its cursor is, and why it is blocked; then the workers sharing the store with their heartbeats. It reads
the store only (no CRM call), so it is cheap enough for a watch loop and safe during an incident.
``--json`` prints the same as one JSON document on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from cli.run_commands import _report, _settings_option
from config.errors import ConfigError


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds(), 1)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def status_document(settings_path: Path, now: datetime) -> dict[str, Any]:
    """The status of every account in the settings file (and any other account the store knows)."""
    from config.settings import read_settings_file
    from worker import open_store

    settings_file = read_settings_file(settings_path)
    configured = settings_file.settings.accounts
    with open_store(settings_file) as store:
        statuses = {s.account: s for s in store.account_statuses()}
        workers = store.worker_statuses()
    accounts: list[dict[str, Any]] = []
    for name in sorted(set(configured) | set(statuses)):
        found = statuses.get(name)
        account = configured.get(name)
        last = None
        if found is not None and found.last_run_status is not None:
            last = {
                "status": found.last_run_status,
                "started_at": _iso(found.last_run_started_at),
                "finished_at": _iso(found.last_run_finished_at),
                "late_s": _seconds(found.last_run_started_at, found.last_run_due_at),
            }
        live = found is not None and found.lease_expires_at is not None and found.lease_expires_at >= now
        accounts.append(
            {
                "account": name,
                "crm": account.crm if account is not None else found.crm if found is not None else None,
                "enabled": account.enabled if account is not None else None,
                "last_cycle": last,
                "next_due_at": _iso(found.next_due_at) if found else None,
                "due_in_s": _seconds(found.next_due_at, now) if found else None,
                "holder": found.holder if found and live else None,
                "lease_expires_at": _iso(found.lease_expires_at) if found else None,
                "lease_expired": bool(found and found.lease_expires_at is not None and not live),
                "cursor_updated_at": _iso(found.cursor_updated_at) if found else None,
                "cursor_age_s": _seconds(now, found.cursor_updated_at) if found else None,
                "last_full_pull_at": _iso(found.last_full_pull_at) if found else None,
                "blocked_reason": found.blocked_reason if found else None,
                "blocked_at": _iso(found.blocked_at) if found else None,
            }
        )
    return {
        "now": now.isoformat(),
        "accounts": accounts,
        "workers": [
            {
                "holder": w.holder,
                "started_at": _iso(w.started_at),
                "heartbeat_at": _iso(w.heartbeat_at),
                "heartbeat_age_s": _seconds(now, w.heartbeat_at),
                "max_cycles": w.max_cycles,
                "leases": w.leases,
            }
            for w in workers
        ],
    }


def _age(seconds: float | None) -> str:
    """``42s``, ``7m``, ``3h``, ``2d`` (negative: in the future, ``in 7m``)."""
    if seconds is None:
        return "-"
    ahead = seconds < 0
    value = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size:
            text = f"{value / size:.0f}{unit}"
            break
    else:
        text = f"{value:.0f}s"
    return f"in {text}" if ahead else text


def _render(document: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="accounts", title_justify="left")
    for column in ("account", "crm", "last cycle", "next due", "holder", "cursor age", "blocked"):
        table.add_column(column, overflow="fold")
    for row in document["accounts"]:
        last = row["last_cycle"]
        last_text = "-"
        if last is not None:
            ended = last["finished_at"] or last["started_at"]
            ago = _age(_seconds(datetime.fromisoformat(document["now"]), datetime.fromisoformat(ended)))
            last_text = f"{last['status']} {ago} ago"
        due = row["due_in_s"]
        if row["enabled"] is False:
            due_text = "disabled"
        elif row["next_due_at"] is None:
            due_text = "not scheduled"
        else:
            due_text = "due now" if due is not None and due <= 0 else _age(-due if due is not None else None)
            if due is not None and due < -60:
                due_text = f"overdue {_age(-due)}"
        holder = row["holder"] or ("expired lease" if row["lease_expired"] else "-")
        blocked = row["blocked_reason"] or ""
        table.add_row(
            row["account"], row["crm"] or "?", last_text, due_text, holder, _age(row["cursor_age_s"]), blocked
        )
    # Piped (grep, a watch log): wide enough that a blocked reason stays on one line to search.
    console = Console() if sys.stdout.isatty() else Console(width=240)
    console.print(table)
    workers = Table(title="workers", title_justify="left")
    for column in ("holder", "started", "heartbeat", "slots", "leases"):
        workers.add_column(column)
    for w in document["workers"]:
        workers.add_row(
            w["holder"],
            w["started_at"],
            f"{_age(w['heartbeat_age_s'])} ago",
            str(w["max_cycles"]),
            str(w["leases"]),
        )
    if document["workers"]:
        console.print(workers)
    else:
        console.print("no followup serve is running on this store")


@click.command()
@_settings_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout instead of tables.")
def status(settings_path: Path, as_json: bool) -> None:
    """Every account's last cycle, next due time, holder, cursor age and blocked reason; the workers.

    Reads the state store only (no CRM is called). Exit status 0, or 2 for invalid settings.
    """
    from worker import utc_now

    try:
        document = status_document(settings_path, utc_now())
    except ConfigError as exc:
        _report(exc)
        return
    if as_json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _render(document)
