"""Canary rollout: which deals a policy's ``rollout`` enforces, and that a deal keeps its cohort."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.model import Owner
from policies.policy_file import PolicyFile, Rollout
from policies.rollout import BUCKETS, bucket, cohort, in_percent
from tests.unit.builders import deal, policy

EMEA = Owner("o7", "Ana", team="EMEA")
APAC = Owner("o8", "Bo", team="APAC")


def _rollout(**values: object) -> Rollout:
    return Rollout.model_validate(values)


@pytest.mark.parametrize(
    ("rollout", "owner_id", "owner", "pipeline", "shadow", "expected"),
    [
        # no rollout: the account's mode for every deal
        (None, "o1", None, "default", False, ("all", True)),
        (None, "o1", None, "default", True, ("all", False)),
        # the account (or the policy's mode) in shadow holds every deal, whatever the rollout names
        ({"owners": ["o1"]}, "o1", None, "default", True, ("all", False)),
        ({"percent": 100}, "o1", None, "default", True, ("all", False)),
        # named owners, teams, pipelines
        ({"owners": ["o1"]}, "o1", None, "default", False, ("owner", True)),
        ({"owners": ["o1"]}, "o2", None, "default", False, ("outside", False)),
        ({"teams": ["EMEA"]}, "o7", EMEA, "default", False, ("team", True)),
        ({"teams": ["EMEA"]}, "o8", APAC, "default", False, ("outside", False)),
        ({"teams": ["EMEA"]}, "o9", None, "default", False, ("outside", False)),  # owner unknown: no team
        ({"pipelines": ["enterprise"]}, "o1", None, "enterprise", False, ("pipeline", True)),
        ({"pipelines": ["enterprise"]}, "o1", None, "default", False, ("outside", False)),
        # the first criterion that matches names the cohort
        ({"owners": ["o7"], "teams": ["EMEA"]}, "o7", EMEA, "enterprise", False, ("owner", True)),
        ({"teams": ["EMEA"], "pipelines": ["enterprise"]}, "o7", EMEA, "enterprise", False, ("team", True)),
        # percentages: everything, nothing
        ({"percent": 100}, "o1", None, "default", False, ("percent", True)),
        ({"percent": 0}, "o1", None, "default", False, ("outside", False)),
        ({"percent": 0, "owners": ["o1"]}, "o1", None, "default", False, ("owner", True)),
    ],
)
def test_cohort_table(
    rollout: dict[str, object] | None,
    owner_id: str,
    owner: Owner | None,
    pipeline: str,
    shadow: bool,
    expected: tuple[str, bool],
) -> None:
    subject = dataclasses.replace(deal("d1", owner_id=owner_id), pipeline_id=pipeline)
    found = cohort(
        _rollout(**rollout) if rollout is not None else None, "acme", subject, owner, shadow=shadow
    )
    assert (found.name, found.enforced) == expected
    assert found.mode == ("enforce" if expected[1] else "shadow")


@pytest.mark.parametrize(
    ("account", "deal_id", "expected"),
    [
        # Fixed values: a change of the hash would move deals between cohorts on upgrade; it must not.
        ("acme", "1001", 2199),
        ("acme", "1002", 8974),
        ("acme-sf", "006000000000001AAA", 56),
    ],
)
def test_buckets_are_fixed_values(account: str, deal_id: str, expected: int) -> None:
    assert bucket(account, deal_id) == expected


def test_buckets_are_stable_across_processes() -> None:
    """Not Python's salted ``hash``: another interpreter (another PYTHONHASHSEED) finds the same buckets."""
    ids = [f"deal-{i}" for i in range(50)]
    code = f"from policies.rollout import bucket; print(','.join(str(bucket('acme', i)) for i in {ids!r}))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert other.stdout.strip() == ",".join(str(bucket("acme", i)) for i in ids)


@settings(max_examples=60, deadline=None)
@given(
    percent=st.floats(min_value=1, max_value=99).map(lambda p: round(p, 2)),
    account=st.text(min_size=1, max_size=20),
    salt=st.text(max_size=8),
)
def test_a_percentage_holds_within_tolerance_on_many_ids(percent: float, account: str, salt: str) -> None:
    """On 20,000 ids the enforced share is the percentage within 5 standard deviations of a binomial."""
    n = 20_000
    enforced = sum(in_percent(percent, account, f"{salt}{i}") for i in range(n))
    p = percent / 100
    sigma = (n * p * (1 - p)) ** 0.5
    assert abs(enforced - n * p) <= 5 * sigma + 1


@settings(max_examples=100, deadline=None)
@given(
    low=st.floats(min_value=0, max_value=100),
    high=st.floats(min_value=0, max_value=100),
    account=st.text(max_size=12),
    deal_id=st.text(min_size=1, max_size=24),
)
def test_widening_only_adds_deals(low: float, high: float, account: str, deal_id: str) -> None:
    """A deal in at a lower percentage is in at every higher one (so widening never moves one out)."""
    low, high = sorted((low, high))
    assert 0 <= bucket(account, deal_id) < BUCKETS
    if in_percent(low, account, deal_id):
        assert in_percent(high, account, deal_id)


def test_the_rollout_section_loads_into_the_policy() -> None:
    loaded = policy("rollout: {owners: ['77'], teams: [EMEA], percent: 12.5}\n")
    assert loaded.rollout == Rollout(owners=("77",), teams=("EMEA",), percent=12.5)
    assert policy().rollout is None


def test_the_rollout_is_in_the_json_schema() -> None:
    """``followup schema`` prints the rollout section, with its bounds."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "followup"), "schema"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    schema = json.loads(done.stdout)
    assert "rollout" in schema["properties"]
    definition = schema["$defs"]["Rollout"]
    assert set(definition["properties"]) == {"owners", "teams", "pipelines", "percent"}
    assert (
        definition["properties"]["percent"]["minimum"],
        definition["properties"]["percent"]["maximum"],
    ) == (
        0,
        100,
    )
    assert definition["additionalProperties"] is False
    assert PolicyFile.model_json_schema()["$defs"]["Rollout"] == definition
