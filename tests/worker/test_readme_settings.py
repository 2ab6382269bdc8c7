"""The settings snippets in README.md are real: they validate against the settings and connector models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import worker
from config.settings import read_settings_file
from connectors.hubspot import HubSpotOptions
from connectors.salesforce import SalesforceOptions

ROOT = Path(__file__).resolve().parents[2]


def _account_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("accounts:")]


def test_readme_settings_snippets_validate_with_their_connector_options(tmp_path: Path) -> None:
    """Each README account snippet loads, and its CRM section validates as that connector's options."""
    blocks = _account_blocks()
    assert len(blocks) == 2
    shutil.copytree(ROOT / "config" / "policies", tmp_path / "policies")
    (tmp_path / "sf-jwt.key").write_text("not read during validation\n")
    merged = blocks[0] + blocks[1].split("accounts:\n", 1)[1]
    merged = merged.replace("/etc/followup/sf-jwt.key", "sf-jwt.key")
    path = tmp_path / "settings.yaml"
    path.write_text(merged, encoding="utf-8")
    settings = read_settings_file(path)
    options = {a.name: worker.connector_options(settings, a.name) for a in worker.load_accounts(settings)}
    assert isinstance(options["acme"], HubSpotOptions)
    assert isinstance(options["acme-sf"], SalesforceOptions)
    assert options["acme-sf"].stage_ids["Closed Lost"] == "closedlost"
