"""``followup validate | schema | plan | explain``: policies and what they decide, without writing anything.

``plan`` and ``explain`` read deals from a JSON snapshot (the format of ``policies.codec``) or, with
``--settings``, pull them read-only from the configured CRM through ``worker.gather_snapshot``. Problems a
human must fix (a bad policy, a bad snapshot) exit with code 2 and print only the problem lines.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from policies.codec import Snapshot
    from policies.model import Decision, Owner
    from policies.policy import Policy

DEFAULT_POLICY = Path("config/policies")


def _fail(lines: tuple[str, ...] | list[str]) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(2)


def _load_policy(path: Path) -> Policy:
    from config.errors import ConfigError
    from policies.loader import load_policy

    try:
        return load_policy(path)
    except ConfigError as exc:
        _fail(exc.problems)


def _load_snapshot(path: Path) -> Snapshot:
    from config.errors import ConfigError
    from config.jsonsource import read_json_text
    from policies.codec import load_snapshot

    try:
        return load_snapshot(read_json_text(path))
    except ConfigError as exc:
        _fail(exc.problems)


def _gather(
    snapshot: Path | None, settings: Path | None, account: str | None, policy_path: Path | None
) -> tuple[Snapshot, Policy]:
    """The deals and the policy to decide with, from a snapshot file or live from the CRM."""
    if snapshot is not None and settings is not None:
        _fail(["give either a snapshot or --settings, not both"])
    if settings is not None:
        from config.errors import ConfigError
        from worker import gather_snapshot

        try:
            found, live_policy = gather_snapshot(settings, account)
        except ConfigError as exc:
            _fail(exc.problems)
        return found, (_load_policy(policy_path) if policy_path is not None else live_policy)
    if snapshot is None:
        _fail(["give a snapshot file (--snapshot FILE) or --settings FILE"])
    return _load_snapshot(snapshot), _load_policy(policy_path or DEFAULT_POLICY)


def _moment(now: str | None, snapshot: Snapshot) -> datetime:
    if now is None:
        return snapshot.taken_at or datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(now)
    except ValueError:
        _fail([f"--now: {now!r} is not an ISO date-time such as 2026-03-04T10:00:00+00:00"])
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _owners(snapshot: Snapshot) -> dict[str, Owner]:
    return {o.id: o for o in snapshot.owners}


def _is_settings(path: Path) -> bool:
    """A settings file is a YAML mapping with ``accounts:``, ``store:``, ``metrics:`` or ``logging:`` (no
    policy section has these names)."""
    from config.errors import ConfigError
    from config.yamlsource import load_located

    try:
        data = load_located(path).data
    except ConfigError:
        return False  # reported with its place when the file is validated as a policy
    return isinstance(data, dict) and not {"accounts", "store", "metrics", "logging"}.isdisjoint(data)


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
def validate(path: Path) -> None:
    """Check policy and settings files: a file, or a folder of them (settings files are recognised by their
    accounts: section and checked with their accounts' policies). Prints every problem as file:line:col
    (exit 2 if any)."""
    from config.errors import ConfigError
    from policies.loader import load_policy_files, policy_files

    try:
        files = policy_files(path)
    except ConfigError as exc:
        _fail(exc.problems)
    settings = [file for file in files if _is_settings(file)]
    policy = [file for file in files if file not in settings]
    problems: list[str] = []
    report: list[str] = []
    for file in settings:
        try:
            report.append(_validate_settings(file))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if policy:
        try:
            loaded = load_policy_files(policy)
        except ConfigError as exc:
            problems.extend(exc.problems)
        else:
            names = ", ".join(o.name for o in loaded.overrides) or "none"
            report.append(f"ok: {len(loaded.sources)} file(s), mode {loaded.mode}, overrides: {names}")
    if problems:
        _fail(problems)
    for line in report:
        click.echo(line)


def _validate_settings(path: Path) -> str:
    """The ok line for a settings file; raises ``ConfigError`` with its problems."""
    from worker import validate_settings

    _, accounts = validate_settings(path)
    names = ", ".join(
        f"{a.name} ({a.settings.crm}{'' if a.settings.enabled else ', disabled'})" for a in accounts
    )
    return f"ok: settings {path}: {len(accounts)} account(s): {names}"


@click.command()
def schema() -> None:
    """Print the JSON Schema of the policy file format (for editors and CI)."""
    from policies.policy_file import PolicyFile

    document: dict[str, Any] = PolicyFile.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "crm-followup policy"
    click.echo(json.dumps(document, indent=2))


_SOURCE_OPTIONS = [
    click.option(
        "--snapshot", "snapshot_opt", type=click.Path(path_type=Path), help="JSON snapshot of a CRM"
    ),
    click.option("--settings", type=click.Path(path_type=Path), help="settings file: pull live, read-only"),
    click.option("--account", help="account in the settings file (default: the only one)"),
    click.option("--policy", "policy_path", type=click.Path(path_type=Path), help="policy"),
    click.option("--now", help="ISO date-time to decide at (default: snapshot time)"),
    click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables"),
]


@dataclass(frozen=True)
class _Source:
    """Where ``plan`` and ``explain`` read deals, the policy and the moment: their shared options."""

    snapshot: Path | None
    settings: Path | None
    account: str | None
    policy_path: Path | None
    now: str | None

    def load(self, snapshot: Path | None = None) -> tuple[Snapshot, Policy, datetime]:
        """The deals (from ``snapshot`` when given, else ``--snapshot`` or ``--settings``), policy and now."""
        found, policy = _gather(snapshot or self.snapshot, self.settings, self.account, self.policy_path)
        return found, policy, _moment(self.now, found)


def _source_options(func: Callable[..., None]) -> Any:
    """Add the source options to a command, which gets them as one ``source: _Source`` argument."""

    @functools.wraps(func)
    def command(
        snapshot_opt: Path | None,
        settings: Path | None,
        account: str | None,
        policy_path: Path | None,
        now: str | None,
        **rest: Any,
    ) -> None:
        func(source=_Source(snapshot_opt, settings, account, policy_path, now), **rest)

    decorated: Any = command
    for option in reversed(_SOURCE_OPTIONS):
        decorated = option(decorated)
    return decorated


@click.command()
@_source_options
def plan(source: _Source, as_json: bool) -> None:
    """Print the actions the policy would take now for every deal, and the ones budgets defer."""
    from policies.codec import action_to_dict
    from policies.planner import plan as make_plan

    snapshot, policy, moment = source.load()
    result = make_plan(policy, snapshot.deals, moment, _owners(snapshot))
    if as_json:
        document = {
            "now": moment.isoformat(),
            "mode": policy.mode,
            "actions": [action_to_dict(a) for a in result.actions],
            "deferred": [
                {
                    "not_before": d.not_before.isoformat(),
                    "reason": d.reason,
                    "action": action_to_dict(d.action),
                }
                for d in result.deferred
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    from cli.policy_tables import render_plan

    render_plan(result, snapshot, moment, policy.mode)


@click.command()
@click.argument("snapshot_arg", required=False, type=click.Path(path_type=Path))
@click.option("--deal", "deal_ids", multiple=True, help="deal id (repeatable; default: every deal)")
@_source_options
def explain(snapshot_arg: Path | None, deal_ids: tuple[str, ...], source: _Source, as_json: bool) -> None:
    """Print each rule's verdict and evidence for deals of a snapshot."""
    from policies.codec import decision_to_dict
    from policies.engine import evaluate

    if snapshot_arg is not None and source.snapshot is not None:
        _fail(["give the snapshot once: as an argument or with --snapshot"])
    snapshot, policy, moment = source.load(snapshot_arg)
    owners = _owners(snapshot)
    deals = [d for d in snapshot.deals if not deal_ids or d.id in deal_ids]
    missing = sorted(set(deal_ids) - {d.id for d in deals})
    if missing:
        _fail([f"no deal {deal_id!r} in the snapshot" for deal_id in missing])
    decisions: list[Decision] = [evaluate(policy, d, moment, owners.get(d.owner_id or "")) for d in deals]
    if as_json:
        click.echo(json.dumps([decision_to_dict(d) for d in decisions], indent=2))
        return
    from cli.policy_tables import render_explanations

    render_explanations(decisions, deals, moment)
