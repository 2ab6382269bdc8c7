"""Loading valid policies: the bundled examples, folders, overrides and what a policy requires."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.policy_commands import schema, validate
from config.errors import ConfigError
from policies.durations import Duration
from policies.loader import load_policy, policy_from_text
from policies.policy_file import PolicyFile
from tests.unit.builders import OWNER, deal, policy

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_example_policy_loads_with_its_requirements() -> None:
    """config/policies loads cleanly and requires the lost, nurture and reactivation stages and the list."""
    loaded = load_policy(ROOT / "config" / "policies")
    assert loaded.mode == "enforce"
    requirements = loaded.requirements()
    assert ("default", "closedlost") in requirements.stages
    assert ("enterprise", "nurture") in requirements.stages
    assert requirements.nurture_names == frozenset({"crm-followup nurture"})
    assert loaded.calendar.holidays is not None
    assert loaded.calendar.holidays.country == "DE"


def test_a_section_set_in_two_files_of_a_folder_is_an_error(tmp_path: Path) -> None:
    """In a folder each section lives in one file; a second one is reported at its place."""
    (tmp_path / "a.yaml").write_text("stages:\n  default: {lost: closedlost}\nmode: shadow\n")
    (tmp_path / "b.yaml").write_text("# second\nmode: enforce\n")
    with pytest.raises(ConfigError) as caught:
        load_policy(tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'b.yaml'}:2:1: mode: already set in {tmp_path / 'a.yaml'}:3:1")


def test_overrides_of_all_files_in_a_folder_add_up(tmp_path: Path) -> None:
    """Overrides from several files are all applied, in file name order."""
    (tmp_path / "1-base.yaml").write_text("stages:\n  default: {lost: closedlost}\n")
    (tmp_path / "2-big.yaml").write_text(
        "overrides:\n  - name: big\n    when: {amount: {min: 100000}}\n"
        "    rules: {stop: {max_unanswered_touches: 9}}\n"
    )
    loaded = load_policy(tmp_path)
    big = loaded.rules_for(deal(amount=200_000)).rules
    small = loaded.rules_for(deal(amount=1_000)).rules
    assert big.stop.max_unanswered_touches == 9
    assert small.stop.max_unanswered_touches == 6
    assert big.stop.max_since_inbound == Duration(90, "days")  # untouched keys keep the defaults


def test_scope_by_team_stage_and_owner_selects_the_override() -> None:
    """An override applies only when every condition of its scope holds."""
    loaded = policy(
        """
overrides:
  - name: nordics late stage
    when: {teams: [nordics], stages: [contractsent]}
    rules: {agreed_interval: {default_cadence: 2d}}
"""
    )
    nordic = OWNER.__class__("o1", "Alex", team="nordics")
    late = deal(stage_id="contractsent")
    assert loaded.rules_for(late, nordic).rules.agreed_interval.default_cadence == Duration(2, "days")
    assert loaded.rules_for(late, OWNER).rules.agreed_interval.default_cadence == Duration(7, "days")
    assert loaded.rules_for(deal(), nordic).rules.agreed_interval.default_cadence == Duration(7, "days")


def test_an_empty_policy_file_is_reported_at_its_first_line() -> None:
    """An empty file (or one with only comments) is a mistake named as such, with a place to jump to."""
    for text in ("", "# nothing yet\n"):
        with pytest.raises(ConfigError) as caught:
            policy_from_text(text, "empty.yaml")
        assert caught.value.problems == (
            "empty.yaml:1:1: (top level): the file is empty; a policy file is a mapping of sections "
            "(mode, calendar, stages, defaults, overrides, texts, budgets)",
        )


def test_a_policy_without_a_lost_stage_is_reported_at_the_top_of_the_file() -> None:
    """The defaults stop deals, so a file must say where lost deals go; the problem has a place too."""
    with pytest.raises(ConfigError) as caught:
        policy_from_text("version: 1\n", "bare.yaml")
    assert caught.value.problems == (
        "bare.yaml:1:1: defaults.stop.enabled: stopping deals needs a lost stage: "
        "set stages.<pipeline id>.lost (a closed-lost stage)",
    )


def test_extra_deal_fields_named_by_qualification_are_required_from_the_crm() -> None:
    """Qualification fields that are not canonical DealFields appear in requirements().deal_fields."""
    loaded = policy(
        """
overrides:
  - name: bant
    when: {pipelines: [default]}
    rules: {qualification: {required_fields: [budget_confirmed, qualification_score]}}
"""
    )
    assert loaded.requirements().deal_fields == frozenset({"budget_confirmed"})


def test_schema_command_prints_the_json_schema_of_the_policy_format() -> None:
    """`followup schema` prints a JSON Schema that knows every section and forbids unknown keys."""
    result = CliRunner().invoke(schema)
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert set(document["properties"]) == set(PolicyFile.model_fields)
    assert document["additionalProperties"] is False


def test_validate_command_exits_2_with_only_the_problem_lines(tmp_path: Path) -> None:
    """`followup validate` on a broken file prints only file:line:col lines and exits 2, no traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: loud\n")
    result = CliRunner().invoke(validate, [str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"{bad}:1:1: mode: Input should be 'enforce' or 'shadow'"]
    assert "Traceback" not in result.output


def test_validate_command_accepts_the_example_policy() -> None:
    """`followup validate config/policies` succeeds and names the overrides."""
    result = CliRunner().invoke(validate, [str(ROOT / "config" / "policies")])
    assert result.exit_code == 0
    assert "ok: 2 file(s), mode enforce" in result.output
