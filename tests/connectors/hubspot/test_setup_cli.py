"""``followup setup hubspot`` against a bare sandbox portal: dry run, creation, and an idempotent re-run."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from crm_sandbox.hubspot import RateLimitConfig, running_hubspot_sandbox
from hubspot import HubSpot

from cli import main

POLICY = Path(__file__).resolve().parents[3] / "config" / "policies"


def _run(base_url: str, token: str, *extra: str):
    runner = CliRunner()
    args = [
        "setup",
        "hubspot",
        "--host",
        base_url,
        "--token-env",
        "HS_SETUP_TOKEN",
        "--policy",
        str(POLICY),
        *extra,
    ]
    return runner.invoke(main, args, env={"HS_SETUP_TOKEN": token})


def test_setup_dry_run_then_create_then_nothing_left_to_do():
    """A dry run creates nothing, a real run creates properties and the list, a re-run creates nothing."""
    with running_hubspot_sandbox(
        seed=2, deals=20, bare=True, rate_limits=RateLimitConfig(enabled=False)
    ) as hs:
        sdk = HubSpot(access_token=hs.access_token, host=hs.base_url)

        def names() -> set[str]:
            return {p.name for p in sdk.crm.properties.core_api.get_all("deals").results}

        dry = _run(hs.base_url, hs.access_token, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "plan     deal property followup_state" in dry.output
        assert "followup_state" not in names()

        real = _run(hs.base_url, hs.access_token)
        assert real.exit_code == 0, real.output
        assert {"followup_state", "followup_agreed_interval_days", "followup_next_step_date"} <= names()
        assert "created  MANUAL contact list 'crm-followup nurture'" in real.output
        found = sdk.crm.lists.lists_api.get_by_name("crm-followup nurture", "0-1")
        assert found.list.processing_type == "MANUAL"

        again = _run(hs.base_url, hs.access_token)
        assert again.exit_code == 0, again.output
        assert "created" not in again.output


def test_setup_names_unknown_stages_and_a_bad_token(tmp_path):
    """A policy stage the portal lacks is named with the stages that exist; a bad token says so."""
    policy = tmp_path / "policy.yaml"
    text = (POLICY / "followup.yaml").read_text().replace("lost: closedlost", "lost: closed_lost_typo")
    policy.write_text(text)
    for extra in POLICY.glob("*.yaml"):
        if extra.name != "followup.yaml":
            (tmp_path / extra.name).write_text(extra.read_text())
    with running_hubspot_sandbox(seed=2, deals=20, rate_limits=RateLimitConfig(enabled=False)) as hs:
        runner = CliRunner()
        args = [
            "setup",
            "hubspot",
            "--host",
            hs.base_url,
            "--token-env",
            "T",
            "--policy",
            str(tmp_path),
            "--dry-run",
        ]
        result = runner.invoke(main, args, env={"T": hs.access_token})
        assert result.exit_code == 1
        assert "closed_lost_typo" in result.output
        assert "closedwon" in result.output  # the stages that do exist
        denied = runner.invoke(main, args, env={"T": "not-a-token"})
        assert denied.exit_code != 0
        assert "access token" in denied.output
        assert "not-a-token" not in denied.output


def test_setup_does_not_report_the_expected_404_of_a_missing_list_as_a_failure():
    """Looking the nurture list up before creating it answers 404: that is the answer, not a failed call."""
    import os
    import subprocess
    import sys

    repo = POLICY.parents[1]
    with running_hubspot_sandbox(
        seed=2, deals=5, bare=True, rate_limits=RateLimitConfig(enabled=False)
    ) as hs:
        command = ["setup", "hubspot", "--host", hs.base_url, "--token-env", "HS_SETUP_TOKEN"]
        done = subprocess.run(
            [sys.executable, "-c", "from cli import main; main()", *command, "--policy", str(POLICY)],
            cwd=repo,
            env={**os.environ, "HS_SETUP_TOKEN": hs.access_token},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        requests_made = hs.control.stats()["endpoints"]
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "created  MANUAL contact list 'crm-followup nurture'" in output
    assert requests_made["GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}"] == 1
    assert "hubspot_call_failed" not in output
    assert "404" not in output
