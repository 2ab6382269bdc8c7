"""``followup validate`` on the shipped examples, as a user runs it: settings recognised, everything valid."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO


def validate(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "validate", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_validate_config_folder_recognises_the_settings_example_and_passes() -> None:
    """`followup validate config/` (it holds settings.example.yaml) exits 0 and says it checked settings."""
    result = validate("config/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok: settings config/settings.example.yaml: 2 account(s): acme-hubspot (hubspot), "
        "acme-salesforce (salesforce, disabled)"
    ]


@pytest.mark.parametrize("path", ["config/policies", "config/settings.example.yaml"])
def test_validate_passes_on_each_shipped_example(path: str) -> None:
    """The policy folder and the settings example are each valid on their own."""
    result = validate(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_validate_checks_the_policies_a_settings_file_names(tmp_path) -> None:
    """A settings file is checked with its accounts' policies: a broken policy is reported in its own file."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "stages:\n  default: {lost: closedlost}\ndefaults:\n  stop: {max_unanswered_touches: 0}\n"
    )
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        "accounts:\n  acme:\n    crm: hubspot\n    policy: policy.yaml\n    hubspot: {access_token_env: X}\n"
    )
    result = validate(str(settings))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{policy}:4:10: defaults.stop.max_unanswered_touches: Input should be greater than or equal to 1"
    ]


def test_settings_and_policies_read_one_duration_grammar_each_with_its_units(tmp_path) -> None:
    """Spelt-out units and weeks work in settings as in policies; business days only in a policy."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "stages:\n  default: {lost: closedlost}\ndefaults:\n  stop: {max_since_inbound: 2 weeks}\n"
    )
    settings = tmp_path / "settings.yaml"
    account = (
        "accounts:\n  acme:\n    crm: hubspot\n    policy: policy.yaml\n    hubspot: {access_token_env: X}\n"
    )
    settings.write_text(account + "    schedule: {every: 15 minutes}\n    full_pull_every: 1w\n")
    result = validate(str(settings))
    assert result.returncode == 0, result.stderr

    settings.write_text(account + "    schedule: {every: 3 business days}\n")
    refused = validate(str(settings))
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"{settings}:6:16: accounts.acme.schedule.every: '3 business days': business days need a policy's "
        'calendar; settings take wall-clock time (a time span such as "30s", "15m", "2h" or "1d")'
    ]
