"""The worker's settings file: CRM accounts, their policies and schedules, the state store, metrics, logs.

One YAML file, validated strictly (unknown keys are errors) and reported like the policies: every problem at
once, each as ``file:line:col: path.to.key: message``. A fleet's accounts may also live in a folder of
account files (``accounts_dir``), each a mapping of account names to accounts like the ``accounts:``
section, so that no file grows past the YAML loader's 1 MiB limit (about 1,000-4,000 accounts per file).
Secrets never appear in them, only the names of the environment variables or files that hold them. Each
account's connector section (``hubspot:`` or ``salesforce:``) is kept as data here and validated by the
worker with the connector's own options model, because ``config`` must not import ``connectors``;
``SettingsFile.where`` gives the worker the positions.
See ``config/settings.example.yaml`` and docs/operations.md for the reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from config.durations import SECONDS_PER, NotADuration, UnitNotAllowed, read_duration
from config.errors import ConfigError
from config.time_zones import check_time_zone
from config.yamlsource import Located, load_located

SPAN_UNITS = ("seconds", "minutes", "hours", "days", "weeks")
_SPAN_HELP = 'a time span such as "30s", "15m", "2h" or "1d"'
MAX_SPAN = timedelta(days=366)  # no schedule, lease or pull interval is longer than a year
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _account_name(name: str) -> str:
    if not _ACCOUNT_NAME.match(name):
        raise ValueError(f"account name {name!r}: letters, digits, '.', '_', '-' (at most 100)")
    return name


AccountName = Annotated[str, AfterValidator(_account_name)]  # an error is placed at the name itself


def parse_span(value: Any) -> timedelta:
    """``"30s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"2w"`` (or a whole number of seconds) as a ``timedelta``.

    The text follows the one duration grammar of policy and settings files (``config.durations``).
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            amount, unit = read_duration(value, SPAN_UNITS)
        except NotADuration:
            raise ValueError(f"expected {_SPAN_HELP}") from None
        except UnitNotAllowed:
            raise ValueError(
                f"{value!r}: business days need a policy's calendar; settings take wall-clock time"
                f" ({_SPAN_HELP})"
            ) from None
        seconds = amount * SECONDS_PER[unit]
    else:
        raise ValueError(f"expected {_SPAN_HELP}")  # noqa: TRY004 pydantic reports ValueError with its place
    if seconds <= 0:
        raise ValueError("a time span must be positive")
    if seconds > MAX_SPAN.total_seconds():
        raise ValueError(f"a time span may be at most {MAX_SPAN.days} days")
    return timedelta(seconds=seconds)


Span = Annotated[timedelta, BeforeValidator(parse_span)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _idle_in_transaction_timeout(value: timedelta) -> timedelta:
    if value > timedelta(hours=1):
        raise ValueError(
            "idle_in_transaction_timeout may be at most 1h (a worker frozen mid-transaction holds other"
            " workers' rows that long)"
        )
    return value


class StoreSettings(_Strict):
    """Where the state lives. A URL with a password must come from ``url_env`` or ``url_file``."""

    url: str | None = None
    url_env: str | None = None
    url_file: Path | None = None
    # PostgreSQL: the server ends a worker session idle that long inside a transaction (a frozen process),
    # freeing its row locks; longer than any transaction's pause between statements, shorter than the
    # default lease (docs/operations.md, "Running a fleet"). null: the server's (role's) own setting.
    idle_in_transaction_timeout: Annotated[Span, AfterValidator(_idle_in_transaction_timeout)] | None = (
        timedelta(minutes=1)
    )

    @model_validator(mode="after")
    def _one_source(self) -> StoreSettings:
        if sum(x is not None for x in (self.url, self.url_env, self.url_file)) > 1:
            raise ValueError("set at most one of url, url_env, url_file")
        if self.url is not None and re.match(r"^[a-z0-9+]+://[^/@]*:[^/@]*@", self.url):
            raise ValueError(
                "the url holds a password: put it in an environment variable (url_env) or a file"
            )
        return self


class MetricsSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)  # 0: any free port (tests)
    # /healthz says "degraded" when an account's cursor has not moved for this many of its scheduled runs
    stale_cursor_runs: int = Field(default=3, ge=1, le=1000)


class LoggingSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"  # auto: console on a terminal, JSON otherwise


def _poll_interval(value: timedelta) -> timedelta:
    if value > timedelta(minutes=5):
        raise ValueError(
            "poll_interval may be at most 5m (a worker looks for due accounts at least that often)"
        )
    return value


class WorkerSettings(_Strict):
    """How one ``followup serve`` process shares the work (docs/operations.md, "Running a fleet")."""

    max_concurrent_cycles: int = Field(default=4, ge=1, le=256)  # cycles this process runs at a time
    poll_interval: Annotated[Span, AfterValidator(_poll_interval)] = timedelta(seconds=5)


CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
CronField = Annotated[
    str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v)
]


class CronKwargs(TypedDict, total=False):
    """The keyword arguments of APScheduler's ``CronTrigger`` that a schedule sets."""

    year: str
    month: str
    day: str
    week: str
    day_of_week: str
    hour: str
    minute: str
    second: str


class CronFields(_Strict):
    """APScheduler's ``CronTrigger`` fields by name: the form that also has ``second``, ``week`` and ``year``.

    As in APScheduler, fields more significant than the least significant one named are ``*``, less
    significant ones their minimum (``week`` and ``day_of_week``: ``*``): ``{second: "*/10"}`` fires every
    ten seconds, ``{minute: 30, hour: "7-19"}`` at 7:30:00 to 19:30:00.
    """

    year: CronField | None = None
    month: CronField | None = None
    day: CronField | None = None
    week: CronField | None = None
    day_of_week: CronField | None = None
    hour: CronField | None = None
    minute: CronField | None = None
    second: CronField | None = None

    @model_validator(mode="after")
    def _some_field(self) -> CronFields:
        if not self.model_fields_set:
            raise ValueError("name at least one of " + ", ".join(type(self).model_fields))
        return self


_WEEKDAY_NUMBER = re.compile(r"\d")


class Schedule(_Strict):
    """Either ``every`` (an interval) or ``cron``, in ``time_zone``: five crontab fields or named fields.

    The expression itself is checked when the worker builds the trigger (with APScheduler's own parser),
    which ``followup validate``, ``run`` and ``serve`` all do before anything runs.
    """

    every: Span | None = None
    cron: (
        Annotated[
            Annotated[str, Tag("crontab")] | Annotated[CronFields, Tag("fields")],
            Discriminator(
                lambda v: "crontab" if isinstance(v, str) else "fields" if isinstance(v, dict) else None,
                custom_error_type="cron",
                custom_error_message=(
                    "expected a crontab line ('0 * * * *') or named fields ({second: '*/30'})"
                ),
            ),
        ]
        | None
    ) = None
    time_zone: str = "UTC"
    misfire_grace: Span = timedelta(minutes=5)
    jitter_seconds: int = Field(default=0, ge=0, le=3600)

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("set exactly one of every, cron")
        return self

    @field_validator("cron")
    @classmethod
    def _cron_shape(cls, cron: str | CronFields | None) -> str | CronFields | None:
        if isinstance(cron, str) and len(cron.split()) != 5:
            raise ValueError(
                "cron takes five fields: minute hour day-of-month month day-of-week "
                "(for seconds, name the fields: cron: {second: '*/30'})"
            )
        weekdays = cron.split()[4] if isinstance(cron, str) else getattr(cron, "day_of_week", None)
        if weekdays is not None and _WEEKDAY_NUMBER.search(re.sub(r"/\d+", "", weekdays)):
            raise ValueError(
                f"day of week {weekdays!r}: write weekday names (mon-fri, sat,sun); numbers mean "
                "different days in crontab (0 = Sunday) and in APScheduler (0 = Monday)"
            )
        return cron

    def cron_fields(self) -> CronKwargs | None:
        """The cron schedule as APScheduler ``CronTrigger`` keyword arguments (``None`` for ``every``)."""
        if self.cron is None:
            return None
        if isinstance(self.cron, str):
            return cast(CronKwargs, dict(zip(CRONTAB_FIELDS, self.cron.split(), strict=True)))
        return cast(CronKwargs, {name: getattr(self.cron, name) for name in self.cron.model_fields_set})

    _known_zone = field_validator("time_zone")(check_time_zone)


class AccountSettings(_Strict):
    """One CRM account: where it is, which policy runs on it, and when."""

    crm: Literal["hubspot", "salesforce"]
    policy: Path  # a policy file or a folder of them; relative to the settings file
    schedule: Schedule = Schedule(every=timedelta(minutes=15))
    shadow: bool = False  # decide, log and audit; write nothing to the CRM
    enabled: bool = True
    full_pull_every: Span = timedelta(hours=24)  # a full pull reconciles the mirror (deletions)
    apply_batch_size: int = Field(default=10_000, ge=1, le=20_000)  # docs/operations.md: why 10,000
    evaluate_chunk: int = Field(
        default=2000, ge=1, le=1_000_000
    )  # deals per planning chunk (an owner is never split)
    lease: Span = timedelta(minutes=10)  # renewed while a cycle runs; another worker waits it out
    hubspot: dict[str, Any] | None = None  # validated by connectors.hubspot.HubSpotOptions
    salesforce: dict[str, Any] | None = None  # validated by connectors.salesforce.SalesforceOptions

    @model_validator(mode="after")
    def _connector_section(self) -> AccountSettings:
        mine, other = (
            (self.hubspot, self.salesforce) if self.crm == "hubspot" else (self.salesforce, self.hubspot)
        )
        if mine is None:
            raise ValueError(f"crm is {self.crm}: add a {self.crm}: section with its connection settings")
        if other is not None:
            wrong = "salesforce" if self.crm == "hubspot" else "hubspot"
            raise ValueError(f"crm is {self.crm}: remove the {wrong}: section")
        return self

    @property
    def connector_section(self) -> dict[str, Any]:
        section = self.hubspot if self.crm == "hubspot" else self.salesforce
        assert section is not None
        return section


class Settings(_Strict):
    store: StoreSettings = StoreSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    worker: WorkerSettings = WorkerSettings()
    accounts_dir: Path | None = None  # a folder of account files (*.yaml), relative to this file
    accounts: dict[AccountName, AccountSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _some_account(self) -> Settings:
        if not self.accounts and self.accounts_dir is None:
            raise ValueError("name at least one account under accounts: (or a folder of them: accounts_dir)")
        return self


AccountsFile = TypeAdapter(dict[AccountName, AccountSettings])


DEFAULT_STORE = "sqlite:///state/followup.sqlite"


@dataclass(frozen=True)
class SettingsFile:
    """Validated settings plus where they came from: for paths relative to the file and error positions.

    ``account_sources`` holds the accounts read from ``accounts_dir`` files (name -> its file, parsed with
    key paths under ``accounts.NAME`` as if written in the settings file).
    """

    settings: Settings
    source: Located
    path: Path
    account_sources: Mapping[str, Located] = field(default_factory=dict)

    def where(self, loc: tuple[str | int, ...]) -> str:
        return self.source_of_path(loc).where(loc)

    def source_of_path(self, loc: tuple[str | int, ...]) -> Located:
        if len(loc) >= 2 and loc[0] == "accounts" and str(loc[1]) in self.account_sources:
            return self.account_sources[str(loc[1])]
        return self.source

    def source_of(self, account: str) -> Located:
        """The parsed file an account is written in (for its problems' positions)."""
        return self.account_sources.get(account, self.source)

    @property
    def accounts_folder(self) -> Path | None:
        """The ``accounts_dir`` folder, resolved (None without one)."""
        folder = self.settings.accounts_dir
        return None if folder is None else _accounts_folder(self.path, folder)

    def account_file(self, account: str) -> Path:
        """The file an account is written in: the settings file, or its file in ``accounts_dir``."""
        found = self.account_sources.get(account)
        return Path(found.filename) if found is not None else self.path

    def policy_path(self, account: str) -> Path:
        """The account's policy; a relative path is relative to the file the account is written in."""
        policy = self.settings.accounts[account].policy.expanduser()
        return policy if policy.is_absolute() else self.account_file(account).parent / policy

    def store_url(self) -> str:
        """The state store URL, read from the environment or a file when configured so."""
        store = self.settings.store
        if store.url_env is not None:
            url = os.environ.get(store.url_env)
            if not url:
                raise ConfigError(
                    [f"{self.where(('store', 'url_env'))}: store.url_env: {store.url_env} is not set"]
                )
        elif store.url_file is not None:
            try:
                url = self._resolve(store.url_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    [f"{self.where(('store', 'url_file'))}: store.url_file: {exc.strerror}"]
                ) from None
        else:
            url = store.url or DEFAULT_STORE
        return self._relative_sqlite(url)

    def _resolve(self, path: Path) -> Path:
        path = path.expanduser()
        return path if path.is_absolute() else (self.path.parent / path)

    def _relative_sqlite(self, url: str) -> str:
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self._resolve(Path(url[len(prefix) :])))
        return url


def read_settings_file(path: Path) -> SettingsFile:
    """Load and validate a settings file (and its ``accounts_dir``); raises ``ConfigError`` listing every
    problem with its place."""
    source = load_located(path)
    if not isinstance(source.data, dict):
        what = "the file is empty" if source.data is None else "the file is not a mapping"
        raise ConfigError(
            [
                f"{source.where(())}: (top level): {what}; settings are a mapping with accounts: "
                "and optionally store:, metrics:, logging:, worker:, accounts_dir:"
            ]
        )
    try:
        settings = Settings.model_validate(source.data)
    except ValidationError as err:
        raise ConfigError(source.problems_from(err)) from None
    if settings.accounts_dir is None:
        return SettingsFile(settings, source, path)
    folder = _accounts_folder(path, settings.accounts_dir)
    accounts, sources = _read_accounts_dir(folder, source, settings)
    return SettingsFile(settings.model_copy(update={"accounts": accounts}), source, path, sources)


def _accounts_folder(settings_path: Path, accounts_dir: Path) -> Path:
    folder = accounts_dir.expanduser()
    return folder if folder.is_absolute() else settings_path.parent / folder


def account_files(folder: Path) -> list[Path]:
    """The account files of an ``accounts_dir``: its ``*.yaml`` and ``*.yml`` files, in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _read_accounts_dir(
    folder: Path, settings_source: Located, settings: Settings
) -> tuple[dict[str, AccountSettings], dict[str, Located]]:
    """Every account of the folder's files and the file each is written in; every problem at once."""
    where_dir = settings_source.where(("accounts_dir",))
    try:
        files = account_files(folder)
    except OSError as exc:
        raise ConfigError([f"{where_dir}: accounts_dir: cannot read {folder}: {exc.strerror}"]) from None
    problems: list[str] = []
    accounts: dict[str, AccountSettings] = dict(settings.accounts)
    sources: dict[str, Located] = {}
    first: dict[str, str] = {name: settings_source.where(("accounts", name)) for name in accounts}
    for file in files:
        try:
            located = load_located(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if not isinstance(located.data, dict) or not located.data:
            problems.append(
                f"{located.where(())}: (top level): an account file maps account names to accounts, "
                "as under accounts: in the settings file"
            )
            continue
        wrapped = Located(
            {"accounts": located.data},
            {("accounts", *loc): mark for loc, mark in located.marks.items()},
            located.filename,
        )
        for name in located.data:  # named twice is reported even when the file has other problems
            here = wrapped.where(("accounts", name))
            if name in first:
                problems.append(f"{here}: accounts.{name}: defined twice (also at {first[name]})")
            else:
                first[name] = here
        try:
            found = AccountsFile.validate_python(located.data)
        except ValidationError as err:
            problems.extend(wrapped.problems_from(err, prefix=("accounts",)))
            continue
        for name, account in found.items():
            if name not in accounts:
                accounts[name] = account
                sources[name] = wrapped
    if not problems and not accounts:
        problems.append(f"{where_dir}: accounts_dir: no account in {folder} (*.yaml files)")
    if problems:
        raise ConfigError(problems)
    return accounts, sources


def settings_signature(path: Path, accounts_folder: Path | None) -> tuple[object, ...]:
    """What changes when the settings file or one of its account files changes: names, sizes, times.

    ``followup serve`` re-reads its settings before each cycle only when this changes (parsing the file of a
    500-account fleet takes about half a second). ``accounts_folder``: ``SettingsFile.accounts_folder``
    of the last read (if the file now names another folder, the file itself changed).
    """
    parts: list[object] = []
    files = [path]
    if accounts_folder is not None:
        try:
            files.extend(account_files(accounts_folder))
        except OSError:
            parts.append((str(accounts_folder), "unreadable"))
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            parts.append((str(file), "missing"))
            continue
        parts.append((str(file), stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(parts)


def load_settings(path: Path) -> Settings:
    return read_settings_file(path).settings
