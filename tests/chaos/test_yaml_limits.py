"""YAML bombs, huge files and deep nesting, in policies, settings and snapshots, through the real commands.

Each run has an address-space ceiling of 1 GiB and a CPU ceiling of a few seconds (set on the subprocess
with setrlimit): before the limits, the billion-laughs file ran past 120 s at 2-3 GB and 20,000-deep
nesting ended in a RecursionError traceback. Now each is refused with exit 2 and one located line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.conftest import REPO, followup

pytestmark = pytest.mark.chaos

POLICY = REPO / "config" / "policies"
CPU_SECONDS = 6  # an interpreter start with the worker's imports is about 1.5 s of CPU


def bomb(levels: int = 9) -> str:
    """The billion laughs: each level nine aliases of the one before, 9^9 values from about 700 bytes."""
    lines = ['lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"lol{i}: &lol{i} [" + ",".join([f"*lol{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def deep_flow(levels: int = 20_000) -> str:
    return "defaults: " + "[" * levels + "]" * levels + "\n"


def deep_block(levels: int = 500) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "v\n"


def huge(path: Path, size: int = 50 * 1024 * 1024) -> None:
    with path.open("wb") as handle:  # sparse: the size is what is judged
        handle.truncate(size)


def settings_around(payload: str) -> str:
    """A settings file whose accounts are fine and which carries the payload as well."""
    return (
        "accounts:\n"
        "  acme:\n"
        "    crm: hubspot\n"
        f"    policy: {POLICY}\n"
        "    hubspot: {access_token_env: CHAOS_TOKEN}\n" + payload
    )


Writer = Callable[[Path], object]
CASES: dict[str, tuple[Writer, str]] = {
    "billion_laughs": (lambda p: p.write_text(bomb()), ":5:"),
    "deep_flow_nesting": (lambda p: p.write_text(deep_flow()), ":1:"),
    "deep_block_nesting": (lambda p: p.write_text(deep_block()), ":50:"),
    "fifty_megabytes": (huge, ":1:1: the file has 52,428,800 bytes"),
}
MESSAGES = {
    "billion_laughs": "aliases expand to more than 10,000 values",
    "deep_flow_nesting": "nested more than 50 levels deep",
    "deep_block_nesting": "nested more than 50 levels deep",
    "fifty_megabytes": "a configuration file may have at most 1,048,576",
}


def check(result_stderr: str, returncode: int, name: str, case: str) -> None:
    assert returncode == 2, (
        f"exit {returncode} (-9/-24: killed at the memory or CPU ceiling)\n{result_stderr[-1500:]}"
    )
    (line,) = result_stderr.splitlines()
    assert line.startswith(name + CASES[case][1]), line
    assert MESSAGES[case] in line


@pytest.mark.parametrize("case", CASES)
def test_policy_file(case: str, tmp_path: Path) -> None:
    """`followup validate POLICY`: exit 2 with one located line, within the ceilings."""
    CASES[case][0](tmp_path / "policy.yaml")
    result = followup(["validate", "policy.yaml"], cwd=tmp_path, cpu_seconds=CPU_SECONDS)
    check(result.stderr, result.returncode, "policy.yaml", case)


@pytest.mark.parametrize("case", CASES)
def test_settings_file(case: str, tmp_path: Path) -> None:
    """`followup run --once --settings FILE`: exit 2 with one located line, within the ceilings."""
    path = tmp_path / "settings.yaml"
    if case == "fifty_megabytes":
        huge(path)
    else:
        payload = {"billion_laughs": bomb(), "deep_flow_nesting": deep_flow(), "deep_block_nesting": ""}[case]
        text = settings_around(payload) if case != "deep_block_nesting" else deep_block()
        path.write_text(text)
    result = followup(["run", "--once", "--settings", "settings.yaml"], cwd=tmp_path, cpu_seconds=CPU_SECONDS)
    name = "settings.yaml"
    if case == "billion_laughs":  # the bomb follows five lines of settings
        assert result.returncode == 2, result.stderr[-1500:]
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"{name}:10:"), line
        assert MESSAGES[case] in line
    elif case == "deep_flow_nesting":
        assert result.returncode == 2, result.stderr[-1500:]
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"{name}:6:"), line
        assert MESSAGES[case] in line
    else:
        check(result.stderr, result.returncode, name, case)


def test_a_huge_snapshot_is_refused_on_its_size(tmp_path: Path) -> None:
    """`followup plan --snapshot FILE` with 100 MB: refused before reading, exit 2, one located line."""
    huge(tmp_path / "snap.json", 100 * 1024 * 1024)
    result = followup(
        ["plan", "--snapshot", "snap.json", "--policy", str(POLICY)], cwd=tmp_path, cpu_seconds=CPU_SECONDS
    )
    assert result.returncode == 2, result.stderr[-1500:]
    assert result.stderr.splitlines() == [
        "snap.json:1:1: the file has 104,857,600 bytes; a snapshot may have at most 67,108,864 "
        "(pull live with --settings instead)"
    ]


def test_a_deeply_nested_snapshot_is_refused_where_it_gets_too_deep(tmp_path: Path) -> None:
    """200,000 levels of arrays in a snapshot: the JSON parser's depth limit, located, within the ceilings."""
    (tmp_path / "snap.json").write_text('{"crm": "x", "owners": ' + "[" * 200_000 + "]" * 200_000 + "}")
    result = followup(
        ["plan", "--snapshot", "snap.json", "--policy", str(POLICY)], cwd=tmp_path, cpu_seconds=CPU_SECONDS
    )
    assert result.returncode == 2, result.stderr[-1500:]
    assert result.stderr.splitlines() == ["snap.json:1:224: recursion limit exceeded"]
