"""The worker's settings file: CRM accounts, their policies and schedules, the state store, metrics, logs.

One YAML file, validated strictly (unknown keys are errors) and reported like the policies: every problem at
once, each as ``file:line:col: path.to.key: message``. Secrets never appear in it, only the names of the
environment variables or files that hold them. Each account's connector section (``hubspot:`` or
``salesforce:``) is kept as data here and validated by the worker with the connector's own options model,
because ``config`` must not import ``connectors``; ``SettingsFile.where`` gives the worker the positions.
See ``config/settings.example.yaml`` and docs/operations.md for the reference.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from config.errors import ConfigError
from config.yamlsource import Located, load_located

_SPAN = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def parse_span(value: Any) -> timedelta:
    """``"30s"``, ``"15m"``, ``"2h"``, ``"1d"`` (or a whole number of seconds) as a ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (match := _SPAN.match(value)):
        seconds = int(match.group(1)) * _SPAN_UNITS[match.group(2)]
    else:
        raise ValueError('expected a time span such as "30s", "15m", "2h" or "1d"')
    if seconds <= 0:
        raise ValueError("a time span must be positive")
    return timedelta(seconds=seconds)


Span = Annotated[timedelta, BeforeValidator(parse_span)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreSettings(_Strict):
    """Where the state lives. A URL with a password must come from ``url_env`` or ``url_file``."""

    url: str | None = None
    url_env: str | None = None
    url_file: Path | None = None

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


class LoggingSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"  # auto: console on a terminal, JSON otherwise


class Schedule(_Strict):
    """Either ``every`` (an interval) or ``cron`` (five fields, in ``time_zone``)."""

    every: Span | None = None
    cron: str | None = None
    time_zone: str = "UTC"
    misfire_grace: Span = timedelta(minutes=5)
    jitter_seconds: int = Field(default=0, ge=0, le=3600)

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("set exactly one of every, cron")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError("cron takes five fields: minute hour day-of-month month day-of-week")
        return self

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class AccountSettings(_Strict):
    """One CRM account: where it is, which policy runs on it, and when."""

    crm: Literal["hubspot", "salesforce"]
    policy: Path  # a policy file or a folder of them; relative to the settings file
    schedule: Schedule = Schedule(every=timedelta(minutes=15))
    shadow: bool = False  # decide, log and audit; write nothing to the CRM
    enabled: bool = True
    full_pull_every: Span = timedelta(hours=24)  # a full pull reconciles the mirror (deletions)
    apply_batch_size: int = Field(default=50, ge=1, le=200)
    evaluate_chunk: int = Field(default=2000, ge=1)  # deals per planning chunk (an owner is never split)
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
    accounts: dict[str, AccountSettings] = Field(min_length=1)

    @field_validator("accounts")
    @classmethod
    def _names(cls, value: dict[str, AccountSettings]) -> dict[str, AccountSettings]:
        for name in value:
            if not _ACCOUNT_NAME.match(name):
                raise ValueError(f"account name {name!r}: letters, digits, '.', '_', '-' (at most 100)")
        return value


DEFAULT_STORE = "sqlite:///state/followup.sqlite"


@dataclass(frozen=True)
class SettingsFile:
    """Validated settings plus where they came from: for paths relative to the file and error positions."""

    settings: Settings
    source: Located
    path: Path

    def where(self, loc: tuple[str | int, ...]) -> str:
        return self.source.where(loc)

    def policy_path(self, account: str) -> Path:
        return self._resolve(self.settings.accounts[account].policy)

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
    """Load and validate a settings file; raises ``ConfigError`` listing every problem with its place."""
    source = load_located(path)
    if not isinstance(source.data, dict):
        raise ConfigError(
            [f"{source.filename}: expected a mapping with accounts:, store:, metrics:, logging:"]
        )
    try:
        settings = Settings.model_validate(source.data)
    except ValidationError as err:
        raise ConfigError(source.problems_from(err)) from None
    return SettingsFile(settings, source, path)


def load_settings(path: Path) -> Settings:
    return read_settings_file(path).settings
