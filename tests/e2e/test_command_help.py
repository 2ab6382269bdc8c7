"""Every ``followup`` command loads and answers ``--help``, run as a user runs it.

The command group imports each command's module on first use; a module that fails to import must fail
loudly here (and for the user), not make the command silently vanish from ``followup --help``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli import COMMANDS

FOLLOWUP = Path(sys.executable).parent / "followup"


def _help(*args: str) -> str:
    done = subprocess.run([str(FOLLOWUP), *args, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_top_level_help_lists_every_command():
    listed = _help()
    for name in COMMANDS:
        assert f"  {name}" in listed, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_answers_help(name: str):
    assert _help(name).startswith(f"Usage: followup {name}")
