"""The composition root: settings -> connectors, policies, store -> cycles, on a schedule or once.

Dependency rules (the import-linter contracts in pyproject.toml, run by lint-imports in CI, and
tests/test_layers.py for this module; see docs/architecture.md):
    policies/    pure: no I/O, no clock, no logging, no SDKs
    connectors/  the only importers of hubspot / simple_salesforce; never import worker, sync, config or store
    store/       SQLAlchemy and the domain model only
    sync/        the cycle, leases, metrics: gets every collaborator injected, wires nothing
    worker.py    the ONLY module that builds connectors, loads settings for a run, configures logging
                 (``configure_logging``) and wires the APScheduler scheduler. Nothing here runs at import.

``run_once`` runs one cycle per account; ``serve`` runs them on schedule (interval or cron per account,
one cycle per account at a time across every worker sharing the store, missed runs coalesced; the due
times live in the store and APScheduler's triggers compute them, sync/fleet.py runs the claims) and stops
cleanly on SIGTERM/SIGINT after the batch in flight; ``gather_snapshot`` is the read-only pull behind
``followup plan --settings`` and ``explain``;
``gather_history_snapshot`` the one behind ``followup backtest --settings`` (sync/history.py).
"""

from __future__ import annotations

import hashlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import structlog

from config.errors import ConfigError
from config.settings import (
    AccountSettings,
    CronKwargs,
    Schedule,
    SettingsFile,
    read_settings_file,
    settings_signature,
)
from connectors.base import CrmConnector, PriorUsage, no_prior_usage
from policies.codec import Snapshot
from store import StateStore
from store.mirror import worth_mirroring

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

    from connectors.hubspot import HubSpotConnector
    from connectors.salesforce import SalesforceConnector
    from policies.policy import Policy
    from store.claims import Claim
    from sync.cycle import CohortOf, Cycle, CycleOptions, CycleResult
    from sync.health import Watched
    from sync.history import HistoryPullResult
    from sync.metrics import WorkerMetrics
    from sync.progress import Progress

log = structlog.get_logger("worker")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ logging

_logging_configured = False


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """structlog for our events and the stdlib loggers (APScheduler, urllib3, SDKs), configured once.

    JSON lines when not on a terminal (``fmt="auto"``), a readable console renderer on one. Every line gets
    an ISO UTC timestamp, the level and the bound context (``run_id``, ``account``).
    """
    global _logging_configured
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer(sort_keys=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([] if console else [structlog.processors.dict_tracebacks]),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "apscheduler.executors", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _logging_configured = True


# ------------------------------------------------------------------------------------------ accounts


@dataclass(frozen=True)
class AccountRuntime:
    """One account, ready to run: its settings, connector options, policy and configuration fingerprint."""

    name: str
    settings: AccountSettings
    options: Any  # HubSpotOptions | SalesforceOptions
    policy: Policy
    fingerprint: str

    @property
    def shadow(self) -> bool:
        return self.settings.shadow or self.policy.mode == "shadow"

    def cohort_of(self) -> CohortOf | None:
        """The policy's canary rollout for this account (None: no rollout, or the account in shadow)."""
        from policies.rollout import cohort

        rollout = self.policy.rollout
        if rollout is None or self.shadow:
            return None
        return lambda deal, owner: cohort(rollout, self.name, deal, owner, shadow=False)

    def cycle_options(self) -> CycleOptions:
        from sync.cycle import CycleOptions

        s = self.settings
        return CycleOptions(
            apply_batch_size=s.apply_batch_size,
            evaluate_chunk=s.evaluate_chunk,
            full_pull_every=s.full_pull_every,
            lease_ttl=s.lease,
        )


def options_model(crm: str) -> Any:
    """The connector's own pydantic model of its settings section (``HubSpotOptions``, ...)."""
    if crm == "hubspot":
        from connectors.hubspot import HubSpotOptions

        return HubSpotOptions
    from connectors.salesforce import SalesforceOptions

    return SalesforceOptions


def connector_options(settings_file: SettingsFile, name: str) -> Any:
    """Validate an account's connector section with the connector's own model; errors get file:line:col."""
    from pydantic import ValidationError

    account = settings_file.settings.accounts[name]
    try:
        return options_model(account.crm).model_validate(account.connector_section)
    except ValidationError as err:
        raise ConfigError(
            settings_file.source_of(name).problems_from(err, prefix=("accounts", name, account.crm))
        ) from None


def build_trigger(schedule: Schedule, now: datetime) -> BaseTrigger:
    """The APScheduler trigger of a schedule, checked with APScheduler's own parser.

    Raises ``ValueError`` naming the problem: an expression APScheduler refuses (``61 * * * *``) or one that
    never fires (``0 0 30 2 *``). ``jitter_seconds`` applies to both forms.
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    jitter = schedule.jitter_seconds or None
    fields = schedule.cron_fields()
    if fields is None:
        assert schedule.every is not None
        return IntervalTrigger(seconds=schedule.every.total_seconds(), timezone=UTC, jitter=jitter)
    try:
        trigger = CronTrigger(**fields, timezone=schedule.time_zone, jitter=jitter)
    except ValueError:
        for name, value in fields.items():  # APScheduler's message does not name the field: find it
            try:
                CronTrigger(**cast(CronKwargs, {name: value}), timezone=UTC)
            except ValueError as exc:
                raise ValueError(f"{name.replace('_', ' ')} {value!r}: {exc}") from None
        raise
    if trigger.get_next_fire_time(None, now) is None:
        raise ValueError("this schedule never fires (no date matches it from now on)")
    return trigger


def watched(account: str, schedule: Schedule, now: datetime) -> Watched:
    """An account for the health check: its schedule's runs between two moments (jitter aside)."""
    from sync.health import Watched

    if schedule.every is not None:
        every = schedule.every

        def every_runs(since: datetime, until: datetime, cap: int) -> int:
            return min(cap, max(0, int((until - since) / every)))

        seconds = int(every.total_seconds())
        unit = next((u for u, n in (("d", 86400), ("h", 3600), ("m", 60)) if seconds % n == 0), "s")
        size = {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
        return Watched(account, f"every {seconds // size}{unit}", every_runs)
    trigger = build_trigger(schedule.model_copy(update={"jitter_seconds": 0}), now)

    def cron_runs(since: datetime, until: datetime, cap: int) -> int:
        runs, moment = 0, since
        while runs < cap:
            fire = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
            if fire is None or fire > until:
                break
            runs, moment = runs + 1, fire
        return runs

    fields = schedule.cron if isinstance(schedule.cron, str) else f"{schedule.cron_fields()}"
    return Watched(account, f"cron {fields} ({schedule.time_zone})", cron_runs)


def check_schedule(settings_file: SettingsFile, name: str, now: datetime) -> None:
    """Build an account's trigger once at load, so a bad cron is a located ``ConfigError`` before any run."""
    schedule = settings_file.settings.accounts[name].schedule
    key = "cron" if schedule.cron is not None else "every"
    try:
        build_trigger(schedule, now)
    except ValueError as exc:
        loc = ("accounts", name, "schedule", key)
        raise ConfigError([f"{settings_file.where(loc)}: {'.'.join(loc)}: {exc}"]) from None


def load_account(settings_file: SettingsFile, name: str) -> AccountRuntime:
    """One account ready to run; its schedule, connector section and policy are all checked, and every
    problem among them is reported at once."""
    from policies.loader import load_policy

    account = settings_file.settings.accounts[name]
    policy_path = settings_file.policy_path(name)

    def policy() -> Policy:
        if not policy_path.exists():
            loc = ("accounts", name, "policy")
            raise ConfigError(
                [f"{settings_file.where(loc)}: {'.'.join(loc)}: no such policy file or folder: {policy_path}"]
            )
        return load_policy(policy_path)

    problems: list[str] = []
    results: list[Any] = []
    for step in (
        partial(check_schedule, settings_file, name, utc_now()),
        partial(connector_options, settings_file, name),
        policy,
    ):
        try:
            results.append(step())
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    _, options, loaded = results
    return AccountRuntime(name, account, options, loaded, fingerprint(settings_file, name))


def load_accounts(
    settings_file: SettingsFile, only: str | None = None, *, disabled_too: bool = False
) -> list[AccountRuntime]:
    """Every (enabled) account, or just ``only``; all problems of all accounts in one ``ConfigError``."""
    accounts = settings_file.settings.accounts
    names = [only] if only else [n for n, a in accounts.items() if a.enabled or disabled_too]
    if only and only not in settings_file.settings.accounts:
        known = ", ".join(settings_file.settings.accounts)
        raise ConfigError([f"{settings_file.path}: no account named {only!r} (accounts: {known})"])
    problems: list[str] = []
    loaded: list[AccountRuntime] = []
    for name in names:
        try:
            loaded.append(load_account(settings_file, name))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return loaded


def validate_settings(path: Path) -> tuple[SettingsFile, list[AccountRuntime]]:
    """``followup validate`` on a settings file: the file, every account (disabled ones too) with its
    connector section, schedule and policy, and a state store URL written in the file; every problem in one
    ``ConfigError``. Nothing is connected to and no secret is read."""
    settings_file = read_settings_file(path)
    problems: list[str] = []
    accounts: list[AccountRuntime] = []
    try:
        accounts = load_accounts(settings_file, disabled_too=True)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        checked_store_url(settings_file, resolve=False)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return settings_file, accounts


def fingerprint(settings_file: SettingsFile, name: str) -> str:
    """A digest of the file the account is written in (the settings file or its account file) and its
    policy files: a blocked account resumes when it changes."""
    digest = hashlib.sha256(settings_file.account_file(name).read_bytes())
    policy_path = settings_file.policy_path(name)
    files = sorted(policy_path.rglob("*.y*ml")) if policy_path.is_dir() else [policy_path]
    for path in files:
        try:
            digest.update(path.read_bytes())
        except OSError:  # a missing policy is the configuration problem itself
            digest.update(str(path).encode())
    return digest.hexdigest()


def build_connector(
    account: AccountRuntime,
    *,
    now: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    prior_usage: PriorUsage = no_prior_usage,
) -> CrmConnector:
    """The connector for an account, asking it for the extra deal fields the policy reads.

    ``prior_usage``: the API calls earlier cycles made on the account (from the state store), so its daily
    budget holds whichever worker runs it.
    """
    extra = sorted(account.policy.requirements().deal_fields)
    return connector_for(
        account.settings.crm,
        account.options,
        extra_deal_fields=extra,
        now=now,
        monotonic=monotonic,
        sleep=sleep,
        prior_usage=prior_usage,
    )


def connector_for(
    crm: str,
    options: Any,
    *,
    extra_deal_fields: Sequence[str] = (),
    now: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    prior_usage: PriorUsage = no_prior_usage,
) -> HubSpotConnector | SalesforceConnector:
    """The one place a connector is built: ``crm``'s build function with the worker's clocks and sleep
    (the real ones unless a caller injects its own: the connectors have no defaults).

    ``options`` are the connector section as its own model (``connector_options``). Raises
    ``connectors.errors.FixConfiguration`` for a secret that cannot be read.
    """
    build: Callable[..., HubSpotConnector | SalesforceConnector]  # the same signature but for ``options``
    if crm == "hubspot":
        from connectors.hubspot import build_hubspot_connector

        build = build_hubspot_connector
    else:
        from connectors.salesforce import build_salesforce_connector

        build = build_salesforce_connector
    return build(
        options,
        extra_deal_fields=extra_deal_fields,
        now=now,
        monotonic=monotonic,
        sleep=sleep,
        prior_usage=prior_usage,
    )


def make_cycle(
    account: AccountRuntime,
    connector: CrmConnector,
    store: StateStore,
    *,
    clock: Clock,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
    due_at: datetime | None = None,
    release_lease: bool = True,
) -> Cycle:
    from policies.planner import plan
    from sync.crashpoints import CrashPoints
    from sync.cycle import Cycle
    from sync.leases import holder_id
    from sync.progress import NoProgress

    return Cycle(
        account=account.name,
        connector=connector,
        store=store,
        decide=partial(plan, account.policy),
        clock=clock,
        holder=holder_id(),
        shadow=account.shadow,
        cohort=account.cohort_of(),
        options=account.cycle_options(),
        fingerprint=account.fingerprint,
        should_stop=should_stop,
        progress=progress or NoProgress(),
        crash=CrashPoints.from_env(),
        due_at=due_at,
        release_lease=release_lease,
    )


def checked_store_url(settings_file: SettingsFile, *, resolve: bool = True) -> str | None:
    """The state store URL once it is known to be one the worker can open, else a located ``ConfigError``.

    ``resolve=False`` (``followup validate``) checks only a URL written in the file: one in an environment
    variable or a file may exist only where the worker runs.
    """
    from store.urls import url_problem

    store = settings_file.settings.store
    if not resolve and store.url is None and (store.url_env or store.url_file):
        return None
    url = settings_file.store_url()
    problem = url_problem(url)
    if problem is None:
        return url
    key = "url_env" if store.url_env else "url_file" if store.url_file else "url"
    loc = ("store", key) if (store.url or store.url_env or store.url_file) else ("store",)
    raise ConfigError([f"{settings_file.where(loc)}: {'.'.join(loc)}: {problem}"])


def store_problem(settings_file: SettingsFile, problem: Exception) -> ConfigError:
    """A problem with the store itself (not its URL) as a ``ConfigError`` placed at the store setting."""
    loc = ("store", "url") if settings_file.settings.store.url else ("store",)
    return ConfigError([f"{settings_file.where(loc)}: {'.'.join(loc)}: {problem}"])


@contextmanager
def open_store(settings_file: SettingsFile, *, pool_size: int | None = None) -> Iterator[StateStore]:
    """The state store, migrated; a located ``ConfigError`` if it was made by a build this one cannot open."""
    from store.database import RecreateStore

    url = checked_store_url(settings_file)
    assert url is not None
    try:
        timeout = settings_file.settings.store.idle_in_transaction_timeout
        store = StateStore(url, pool_size=pool_size, idle_in_transaction_timeout=timeout)
    except RecreateStore as exc:
        raise store_problem(settings_file, exc) from None
    try:
        yield store
    finally:
        store.close()


# ------------------------------------------------------------------------------------------ running


def run_account(
    account: AccountRuntime,
    store: StateStore,
    *,
    clock: Clock = utc_now,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
    respect_block: bool = True,
    due_at: datetime | None = None,
    keep_lease: bool = False,
) -> CycleResult:
    """One cycle of one account with a fresh connector (status ``blocked`` when the account is blocked).

    ``keep_lease``: the caller holds the account's lease and ends it (``serve``); ``due_at``: when the
    scheduled cycle was due.
    """
    from connectors.errors import CrmError
    from sync.cycle import CycleResult, run_cycle

    blocked = store.blocked(account.name)
    if blocked is not None:
        if respect_block and blocked.fingerprint == account.fingerprint:
            log.error("account_blocked", account=account.name, reason=blocked.reason, since=str(blocked.at))
            return CycleResult("-", account.name, "blocked", account.shadow, error=blocked.reason)
        store.unblock_account(account.name)
        log.info("account_unblocked", account=account.name)
    try:
        connector = build_connector(
            account, now=clock, prior_usage=partial(store.api_calls_since, account.name)
        )
    except CrmError as exc:  # e.g. a missing secret: FixConfiguration before the first call
        log.error(  # noqa: TRY400 - a configuration problem, not a bug: no traceback
            "connector_unavailable", account=account.name, error=type(exc).__name__, detail=str(exc)
        )
        store.ensure_account(account.name, account.settings.crm, clock())
        store.block_account(account.name, str(exc), account.fingerprint, clock())
        return CycleResult("-", account.name, "fix_configuration", account.shadow, error=str(exc))
    try:
        cycle = make_cycle(
            account,
            connector,
            store,
            clock=clock,
            should_stop=should_stop,
            progress=progress,
            due_at=due_at,
            release_lease=not keep_lease,
        )
        return run_cycle(cycle)
    finally:
        connector.close()


def run_once(
    settings_path: Path,
    *,
    account: str | None = None,
    clock: Clock = utc_now,
    progress: Progress | None = None,
) -> list[CycleResult]:
    """``followup run --once``: one cycle per account (a blocked account is tried again: a human asked)."""
    settings_file = read_settings_file(settings_path)
    accounts = load_accounts(settings_file, account)
    results: list[CycleResult] = []
    with open_store(settings_file) as store:
        for runtime in accounts:
            results.append(run_account(runtime, store, clock=clock, progress=progress, respect_block=False))
    return results


def _account_to_read(settings_path: Path, account: str | None) -> tuple[SettingsFile, AccountRuntime]:
    """The settings and the one account a read-only command (plan, explain, backtest) reads: ``account``,
    or the only one the settings have; logging goes to stderr, since stdout is the command's output."""
    settings_file = read_settings_file(settings_path)
    if not _logging_configured:
        configure_logging(settings_file.settings.logging.level, settings_file.settings.logging.format)
    names = list(settings_file.settings.accounts)
    if account is None and len(names) > 1:
        raise ConfigError(
            [f"{settings_path}: several accounts ({', '.join(names)}): choose one with --account"]
        )
    return settings_file, load_accounts(settings_file, account or names[0])[0]


def gather_snapshot(settings_path: Path, account: str | None) -> tuple[Snapshot, Policy]:
    """A read-only pull of an account into a ``Snapshot`` (what the worker would mirror), and its policy.

    Used by ``followup plan --settings`` and ``followup explain --settings``: it reads the CRM, writes
    nothing to the CRM and touches no state store.
    """
    from sync.directory import with_known_time_zones

    _, runtime = _account_to_read(settings_path, account)

    connector = build_connector(runtime)
    try:
        directory = with_known_time_zones(connector.read_directory())
        deals = [
            d for batch in connector.pull_changes(directory, None) for d in batch.deals if worth_mirroring(d)
        ]
    finally:
        connector.close()
    snapshot = Snapshot(
        crm=connector.name,
        owners=tuple(directory.owners.values()),
        pipelines=tuple(directory.pipelines.values()),
        deals=tuple(deals),
        taken_at=utc_now(),
    )
    return snapshot, runtime.policy


@dataclass(frozen=True)
class HistorySnapshot:
    """A live backtest's input: the snapshot with history, the account's policy, and how the pull went."""

    snapshot: Snapshot
    policy: Policy
    pull: HistoryPullResult
    api_calls: int


def gather_history_snapshot(
    settings_path: Path,
    account: str | None,
    since: date,
    *,
    use_store: bool = True,
    clock: Clock = utc_now,
) -> HistorySnapshot:
    """A read-only pull of an account's deals with their field histories, for ``followup backtest``.

    Deals open now or changed since ``since`` (a day in the policy calendar's time zone), closed ones
    included. With ``use_store`` (the default) the pull is incremental through the settings' state store,
    whose history tables it updates (``sync/history.py``; the cycle's mirror and cursor are left alone);
    without, it pulls everything and keeps it in memory. Nothing is written to the CRM.
    """
    from sync.directory import with_known_time_zones
    from sync.history import HistoryConnector, pull_history_snapshot

    settings_file, runtime = _account_to_read(settings_path, account)
    calendar = runtime.policy.calendar_for(None)
    start = datetime.combine(since, clock_time(0), calendar.tz).astimezone(UTC)
    connector = build_connector(runtime, now=clock)
    if not hasattr(connector, "read_histories"):  # pragma: no cover - both CRM connectors read histories
        raise ConfigError([f"{settings_path}: {runtime.settings.crm}: this connector cannot read histories"])
    try:
        directory = with_known_time_zones(connector.read_directory())
        with open_store(settings_file) if use_store else nullcontext(None) as store:
            from store.history import HistoryStore

            pulled = pull_history_snapshot(
                cast("HistoryConnector", connector),
                directory,
                since=start,
                now=clock,
                store=HistoryStore(store.engine) if store is not None else None,
                account=runtime.name,
            )
        calls = connector.usage().calls
    finally:
        connector.close()
    return HistorySnapshot(pulled.snapshot, runtime.policy, pulled, calls)


# ------------------------------------------------------------------------------------------ serving


def next_fire_time(trigger: BaseTrigger, previous: datetime, now: datetime) -> datetime | None:
    """The trigger's first fire time after ``now``, counting on from ``previous`` (the due time just served).

    The fire times between ``previous`` and ``now`` were missed (the cycle ran long, or the fleet is behind)
    and coalesce into the cycle that ran, as APScheduler's own scheduler does with ``coalesce=True``.
    """
    fire = trigger.get_next_fire_time(previous, now)
    for _ in range(10_000):
        if fire is None or fire > now:
            return fire
        fire = trigger.get_next_fire_time(fire, now)
    return trigger.get_next_fire_time(None, now)  # a very long pause on a short schedule: from now on


class _SettingsCache:
    """The settings file as ``serve`` last read it, read again only when it (or an account file) changed."""

    def __init__(self, path: Path, first: SettingsFile) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._file = first
        self._signature = settings_signature(path, first.accounts_folder)

    def get(self) -> SettingsFile:
        with self._lock:
            signature = settings_signature(self._path, self._file.accounts_folder)
            if signature != self._signature:
                self._file = read_settings_file(self._path)  # a ConfigError leaves the old one cached
                self._signature = settings_signature(self._path, self._file.accounts_folder)
            return self._file


class NotServed(Exception):
    """The account is no longer enabled in this worker's settings: it leaves the schedule."""


@dataclass(frozen=True)
class _Runner:
    """What ``serve`` does with a claimed account: re-read its configuration, run its cycle, compute when
    it is next due. The fleet loop (sync/fleet.py) calls it from the cycle threads."""

    settings: _SettingsCache
    store: StateStore
    metrics: WorkerMetrics
    clock: Clock

    def _account_settings(self, name: str) -> AccountSettings:
        account = self.settings.get().settings.accounts.get(name)
        if account is None or not account.enabled:
            raise NotServed(name)
        return account

    def lease_ttl(self, name: str) -> timedelta:
        try:
            return self._account_settings(name).lease
        except (ConfigError, NotServed):
            return timedelta(minutes=10)

    def next_due(self, name: str, previous: datetime, now: datetime) -> datetime | None:
        """When the account is next due by its current schedule; None when it is no longer served."""
        try:
            schedule = self._account_settings(name).schedule
        except NotServed:
            log.warning("account_not_served", account=name, hint="no longer enabled in the settings")
            return None
        except ConfigError:
            return now + UNREADABLE_RETRY
        try:
            return next_fire_time(build_trigger(schedule, now), previous, now)
        except ValueError:  # a schedule that does not build: configuration_invalid is logged by the run
            return now + UNREADABLE_RETRY

    def run(self, claim: Claim, should_stop: Callable[[], bool]) -> str:
        """A claimed cycle: settings and policy are read again (when changed), so edits apply at once."""
        structlog.contextvars.clear_contextvars()
        name = claim.account
        try:
            self._account_settings(name)
            settings_file = self.settings.get()
            account = load_accounts(settings_file, name)[0]
        except NotServed:
            return "not_served"
        except ConfigError as exc:
            log.error(  # noqa: TRY400 - the problems say it all
                "configuration_invalid", account=name, problems=list(exc.problems)
            )
            self.metrics.error(name, "configuration")
            self.block_invalid(name, exc)
            return "configuration"
        late = (self.clock() - claim.due_at).total_seconds()
        self.metrics.lag(name, late)
        if late > account.settings.schedule.misfire_grace.total_seconds():
            log.warning("cycle_late", account=name, late_s=round(late, 1), due_at=claim.due_at.isoformat())
        with self.metrics.cycle_running(name):
            result = run_account(
                account,
                self.store,
                clock=self.clock,
                should_stop=should_stop,
                due_at=claim.due_at,
                keep_lease=True,
            )
        self.metrics.observe(result)
        return result.status

    def block_invalid(self, name: str, exc: ConfigError) -> None:
        """Record the problems as the account's block (``followup status`` shows them); a change of its
        files lifts it, as for a block the CRM caused."""
        try:
            settings_file = self.settings.get()
            if name not in settings_file.settings.accounts:
                return
            digest = fingerprint(settings_file, name)
        except (ConfigError, OSError):
            return
        reason = "configuration invalid: " + "; ".join(exc.problems)
        self.store.block_account(name, reason[:4000], digest, self.clock())


UNREADABLE_RETRY = timedelta(minutes=5)  # an account whose settings cannot be read is looked at again then


def load_serveable(settings_file: SettingsFile) -> tuple[list[AccountRuntime], dict[str, list[str]]]:
    """Every enabled account that loads, and the problems of those that do not (a fleet serves the others).

    If none loads, that is a configuration a human must fix: ``ConfigError`` with every problem.
    """
    loaded: list[AccountRuntime] = []
    broken: dict[str, list[str]] = {}
    for name, account in settings_file.settings.accounts.items():
        if not account.enabled:
            continue
        try:
            loaded.append(load_account(settings_file, name))
        except ConfigError as exc:
            broken[name] = list(exc.problems)
    if broken and not loaded:
        raise ConfigError([problem for problems in broken.values() for problem in problems])
    return loaded, broken


def serve(
    settings_path: Path,
    *,
    clock: Clock = utc_now,
    on_started: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """``followup serve``: run every enabled account on its schedule until SIGTERM/SIGINT (or ``stop``).

    The settings are validated before anything starts; an account whose own configuration is broken (its
    policy, connector section or schedule) is logged ``configuration_invalid``, blocked in the store and
    skipped, while the others run. Accounts are claimed from the shared store (sync/fleet.py), at most
    ``worker.max_concurrent_cycles`` at a time; any number of workers may share one PostgreSQL store, one
    only a SQLite file. A stop finishes the batch in flight (the cycle checks between batches), hands the
    leases back, then the process exits with the state consistent. ``on_started`` receives the metrics
    port (tests use port 0).
    """
    from store.solo import AnotherWorker, single_worker
    from sync.fleet import FleetOptions, FleetWorker
    from sync.health import Health
    from sync.leases import holder_id
    from sync.metrics import MetricsServer, WorkerMetrics

    settings_file = read_settings_file(settings_path)
    settings = settings_file.settings
    accounts, broken = load_serveable(settings_file)
    if not _logging_configured:
        configure_logging(settings.logging.level, settings.logging.format)
    url = checked_store_url(settings_file)
    assert url is not None
    options = settings.worker
    names = sorted([a.name for a in accounts] + list(broken))
    shortest = min([a.settings.lease for a in accounts], default=timedelta(minutes=10))
    fleet_options = FleetOptions(
        max_cycles=options.max_concurrent_cycles,
        poll_interval=options.poll_interval,
        heartbeat_every=min(timedelta(seconds=30), shortest / 3),
    )
    stop_event = stop or threading.Event()
    finished = False
    with ExitStack() as stack:
        try:
            stack.enter_context(single_worker(url))
        except AnotherWorker as exc:
            raise store_problem(settings_file, exc) from None
        store = stack.enter_context(open_store(settings_file, pool_size=options.max_concurrent_cycles + 3))
        crms = {a.name: a.settings.crm for a in accounts}
        crms.update({name: settings.accounts[name].crm for name in broken})
        store.register_accounts(crms, clock())
        health = Health(
            store,
            [watched(a.name, a.settings.schedule, clock()) for a in accounts],
            clock,
            stale_runs=settings.metrics.stale_cursor_runs,
            started_at=clock(),
        )
        metrics = WorkerMetrics(clock, health)
        metrics.start(names, slots=options.max_concurrent_cycles)
        runner = _Runner(_SettingsCache(settings_path, settings_file), store, metrics, clock)
        for name, problems in broken.items():
            log.error("configuration_invalid", account=name, problems=problems)
            metrics.error(name, "configuration")
            runner.block_invalid(name, ConfigError(problems))
        fleet = FleetWorker(
            store,
            holder_id(),
            run=runner.run,
            next_due=runner.next_due,
            lease_ttl=runner.lease_ttl,
            clock=clock,
            stop=stop_event,
            options=fleet_options,
            metrics=metrics,
        )
        server = MetricsServer(
            metrics, settings.metrics.host, settings.metrics.port, lambda: not stop_event.is_set()
        )
        server.start()

        def request_stop(signum: int = 0, _frame: object = None) -> None:
            if not stop_event.is_set():
                log.info("worker_stopping", signal=signum or None)
            stop_event.set()
            fleet.wake()

        def watch() -> None:  # a stop requested through the event (tests, embedding) rather than a signal
            stop_event.wait()
            fleet.wake()

        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info(
            "worker_started",
            accounts=names if len(names) <= 50 else len(names),
            metrics_port=server.port,
            max_concurrent_cycles=options.max_concurrent_cycles,
        )
        if on_started is not None:
            on_started(server.port)
        threading.Thread(target=watch, name="stop-watcher", daemon=True).start()
        try:
            finished = fleet.serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.stop()
            log.info("worker_stopped", clean=finished)
    return 0 if finished else 1
