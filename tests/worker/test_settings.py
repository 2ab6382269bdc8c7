"""The settings file: valid examples load; every mistake is reported with its file:line:col."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import load_settings, parse_span, read_settings_file

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "settings.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_settings_load() -> None:
    """The shipped example is valid: two accounts, an interval and a cron schedule."""
    settings = load_settings(EXAMPLE)
    assert settings.accounts["acme-hubspot"].schedule.every == timedelta(minutes=15)
    assert settings.accounts["acme-salesforce"].schedule.cron == "0 * * * *"
    assert settings.accounts["acme-salesforce"].enabled is False


def test_example_connector_sections_validate(tmp_path: Path) -> None:
    """The example's connector sections pass the connectors' own options models."""
    import worker

    shutil.copy(EXAMPLE, tmp_path / "settings.yaml")
    settings_file = read_settings_file(tmp_path / "settings.yaml")
    options = worker.connector_options(settings_file, "acme-hubspot")
    assert options.access_token_env == "HUBSPOT_ACCESS_TOKEN"


def test_errors_carry_file_line_col(tmp_path: Path) -> None:
    """An unknown key, a bad schedule and a missing connector section are all reported at once."""
    path = write(
        tmp_path,
        "accounts:\n"
        "  a:\n"
        "    crm: hubspot\n"
        "    policy: p.yaml\n"
        "    colour: blue\n"
        "    hubspot: {access_token_env: T}\n"
        "  b:\n"
        "    crm: salesforce\n"
        "    policy: p.yaml\n"
        "    schedule: {every: soon}\n"
        "  c:\n"
        "    crm: salesforce\n"
        "    policy: p.yaml\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = "\n".join(caught.value.problems)
    assert f"{path}:5:5: accounts.a.colour: unknown key" in problems
    assert f"{path}:10:16: accounts.b.schedule.every" in problems
    assert f"{path}:11:3: accounts.c: crm is salesforce: add a salesforce: section" in problems


def test_connector_section_errors_point_into_the_section(tmp_path: Path) -> None:
    """A bad key in the hubspot: section is reported at its own line through the connector's model."""
    import worker

    path = write(
        tmp_path,
        "accounts:\n  a:\n    crm: hubspot\n    policy: p.yaml\n"
        "    hubspot:\n      access_token_env: T\n      tier: mega\n",
    )
    with pytest.raises(ConfigError) as caught:
        worker.connector_options(read_settings_file(path), "a")
    assert caught.value.problems[0].startswith(f"{path}:7:7: accounts.a.hubspot.tier:")


def test_store_url_with_password_is_refused(tmp_path: Path) -> None:
    """A database password written into the settings file is an error that names the alternative."""
    path = write(
        tmp_path,
        "store: {url: 'postgresql+psycopg://u:secret@db/followup'}\n"
        "accounts: {a: {crm: hubspot, policy: p.yaml, hubspot: {access_token_env: T}}}\n",
    )
    with pytest.raises(ConfigError, match="url_env"):
        load_settings(path)


@pytest.mark.parametrize(
    ("written", "timeout"),
    [
        ("", timedelta(minutes=1)),
        (", idle_in_transaction_timeout: 90s", timedelta(seconds=90)),
        (", idle_in_transaction_timeout: null", None),
    ],
)
def test_store_idle_in_transaction_timeout(tmp_path: Path, written: str, timeout: timedelta | None) -> None:
    """A minute by default; any span up to an hour; null leaves the server's own setting."""
    path = write(
        tmp_path,
        f"store: {{url: 'postgresql+psycopg://u@db/followup'{written}}}\n"
        "accounts: {a: {crm: hubspot, policy: p.yaml, hubspot: {access_token_env: T}}}\n",
    )
    assert load_settings(path).store.idle_in_transaction_timeout == timeout


def test_relative_sqlite_url_is_relative_to_the_settings_file(tmp_path: Path, monkeypatch) -> None:
    """``sqlite:///state/x.sqlite`` lands beside the settings file, whatever the working directory."""
    path = write(
        tmp_path,
        "store: {url: 'sqlite:///state/x.sqlite'}\n"
        "accounts: {a: {crm: hubspot, policy: p.yaml, hubspot: {access_token_env: T}}}\n",
    )
    assert read_settings_file(path).store_url() == f"sqlite:///{tmp_path}/state/x.sqlite"
    env_path = write(
        tmp_path,
        "store: {url_env: STORE_URL}\n"
        "accounts: {a: {crm: hubspot, policy: p.yaml, hubspot: {access_token_env: T}}}\n",
    )
    monkeypatch.setenv("STORE_URL", "sqlite:////var/tmp/y.sqlite")
    assert read_settings_file(env_path).store_url() == "sqlite:////var/tmp/y.sqlite"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), (45, 45)]
)
def test_time_spans(text: str | int, seconds: int) -> None:
    """Schedules and periods accept s/m/h/d spans and whole seconds."""
    assert parse_span(text) == timedelta(seconds=seconds)
