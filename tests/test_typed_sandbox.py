"""crm-sandbox is a typed package (PEP 561): its wheel carries ``crm_sandbox/py.typed``.

Without the marker, mypy skips an installed ``crm_sandbox`` ("module is installed, but missing library stubs
or py.typed marker") and whatever imports it is checked against ``Any``. In this repository mypy finds the
sources through ``mypy_path`` instead (pyproject.toml), because setuptools' editable install is an import
hook that mypy does not follow; the wheel is what every other user of the sandbox installs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[1] / "sandbox"


@pytest.mark.slow
def test_the_sandbox_wheel_is_a_typed_package(tmp_path: Path) -> None:
    source = tmp_path / "sandbox"  # a copy: building writes build/ and egg-info next to the sources
    ignored = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(SANDBOX, source, ignore=ignored)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = tmp_path.glob("crm_sandbox-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "crm_sandbox/__init__.py" in names  # the package itself is in it
    assert "crm_sandbox/py.typed" in names
