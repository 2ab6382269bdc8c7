"""Options and start-up steps shared by ``followup sandbox hubspot`` and ``followup sandbox salesforce``.

``dataset_options`` adds --host/--port and the dataset options and hands the command ``seeding``, a
``DatasetFlags``; ``fault_options`` adds the fault options and hands it ``fault_flags``, a
``FaultFlags``. Help texts name the CRM's own words. Imports of the sandbox stay inside the functions
so ``followup --help`` does not load it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from crm_sandbox.clock import SandboxClock
    from crm_sandbox.dataset import Dataset
    from crm_sandbox.faults import FaultConfig

__all__ = ["DatasetFlags", "FaultFlags", "dataset_options", "fault_options"]

Command = Callable[..., Any]
Decorator = Callable[[Command], Command]


@dataclass(frozen=True)
class DatasetFlags:
    """--seed, --deals, --data and --now as given."""

    seed: int
    deals: int
    data_dir: Path | None
    now_text: str | None

    def now(self) -> datetime | None:
        """--now as an aware datetime (UTC when no offset is given), or None without one."""
        try:
            now = datetime.fromisoformat(self.now_text) if self.now_text else None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--now") from None
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now

    def seed_sandbox(self, now: datetime | None, *, records: str) -> tuple[Dataset, SandboxClock]:
        """Say what is being seeded, then the dataset (from the --data cache when given) and the clock."""
        from crm_sandbox.seeding import seeded_start

        click.echo(f"Seeding {self.deals} {records} (seed {self.seed})...", err=True)
        return seeded_start(self.seed, self.deals, now, data_dir=self.data_dir)


@dataclass(frozen=True)
class FaultFlags:
    """The fault options as given (--error-rate ... --fault-seed)."""

    error_rate: float
    latency_ms: float
    rate_limit_storm: float
    storm_length: int
    drop_rate: float
    token_ttl_s: float | None
    fault_seed: int

    def config(self) -> FaultConfig:
        """The faults the options ask for; a usage error when a value is out of range."""
        from crm_sandbox.faults import FaultConfig

        try:
            return FaultConfig(
                error_rate=self.error_rate,
                latency_ms=self.latency_ms,
                rate_limit_storm=self.rate_limit_storm,
                rate_limit_burst=self.storm_length,
                drop_rate=self.drop_rate,
                token_ttl_s=self.token_ttl_s,
                seed=self.fault_seed,
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None


def _with_options(
    bundle: type[DatasetFlags | FaultFlags], name: str, options: Sequence[Decorator]
) -> Decorator:
    """Add ``options`` (in --help order); the command gets their values as one ``bundle`` named ``name``."""
    names = [field.name for field in fields(bundle)]

    def apply(command: Command) -> Command:
        @functools.wraps(command)
        def bundled(**values: Any) -> Any:
            flags = bundle(**{key: values.pop(key) for key in names})
            return command(**values, **{name: flags})

        decorated: Command = bundled
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return apply


def dataset_options(*, default_port: int, world: str, records: str) -> Decorator:
    """--host, --port, then --seed, --deals, --data and --now, given to the command as ``seeding``.

    ``world`` is what a seed makes ("portal", "org"), ``records`` what --deals counts ("deals", ...).
    """
    return _with_options(
        DatasetFlags,
        "seeding",
        [
            click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind."),
            click.option(
                "--port",
                default=default_port,
                show_default=True,
                type=int,
                help="Port to listen on (0 = any free port).",
            ),
            click.option(
                "--seed",
                default=7,
                show_default=True,
                type=int,
                help=f"Dataset seed (same seed, same {world}).",
            ),
            click.option(
                "--deals", default=1000, show_default=True, type=int, help=f"Number of {records} to seed."
            ),
            click.option(
                "--data",
                "data_dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=None,
                help=(
                    "Cache directory: load the dataset from here if saved before, else generate and save it."
                ),
            ),
            click.option(
                "--now",
                "now_text",
                default=None,
                help="The dataset's 'now' (ISO 8601); the clock starts there.",
            ),
        ],
    )


def fault_options(
    *, storm_help: str, storm_length_help: str, expiry_help: str, before_fault_seed: Sequence[Decorator] = ()
) -> Decorator:
    """The fault options, given to the command as ``fault_flags``.

    ``before_fault_seed`` are options of the command's own that --help lists just before --fault-seed.
    """
    return _with_options(
        FaultFlags,
        "fault_flags",
        [
            click.option(
                "--error-rate",
                default=0.0,
                show_default=True,
                type=float,
                help="Share of requests answered 5xx.",
            ),
            click.option(
                "--latency-ms",
                default=0.0,
                show_default=True,
                type=float,
                help="Latency added to every request.",
            ),
            click.option("--rate-limit-storm", default=0.0, show_default=True, type=float, help=storm_help),
            click.option("--storm-length", default=1, show_default=True, type=int, help=storm_length_help),
            click.option(
                "--drop-rate",
                default=0.0,
                show_default=True,
                type=float,
                help="Share of connections dropped.",
            ),
            click.option("--token-ttl-s", default=None, type=float, help=expiry_help),
            *before_fault_seed,
            click.option(
                "--fault-seed", default=0, show_default=True, type=int, help="Seed of the fault sequence."
            ),
        ],
    )
