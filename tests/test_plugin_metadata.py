"""The tap declares each setting, capability, field and Python version once; the rest agrees.

meltano.yml's extractor entry, README's tables and docs/streams.md are generated from the tap
by scripts/sync_plugin_metadata.py (`make metadata`); these tests fail on any drift.
"""

from __future__ import annotations

import difflib
import json
import pathlib
import re
import shutil
import subprocess
import sys
from importlib import metadata as package_metadata

import pytest
from ruamel.yaml import YAML

from scripts import sync_plugin_metadata as metadata
from tap_amplemarket.tap import TapAmplemarket

ROOT = metadata.ROOT
TAP = [sys.executable, "-c", "from tap_amplemarket.cli import main; main()"]


def about() -> dict:
    out = subprocess.run(
        [*TAP, "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def meltano_extractor() -> dict:
    project = YAML(typ="safe").load(metadata.MELTANO_YML.read_text())
    (extractor,) = project["plugins"]["extractors"]
    return extractor


def test_generated_files_match_the_tap():
    stale = [str(path.relative_to(ROOT)) for path in metadata.drift()]
    assert stale == [], f"{stale} differ from the tap: run `make metadata`"


def test_a_setting_added_to_the_tap_without_regenerating_is_caught(monkeypatch):
    schema = json.loads(json.dumps(TapAmplemarket.config_jsonschema))
    assert "request_timeout_budget" not in schema["properties"]
    schema["properties"]["request_timeout_budget"] = {
        "type": ["integer", "null"],
        "description": "A setting the generated files do not know yet.",
    }
    monkeypatch.setattr(TapAmplemarket, "config_jsonschema", schema)
    assert set(metadata.drift()) == {
        metadata.MELTANO_YML,
        metadata.PLUGIN_DEFINITION,
        metadata.README,
        metadata.MELTANO_DOC,
    }


def test_every_setting_and_every_field_is_described():
    undescribed = [
        name
        for name, prop in TapAmplemarket.settings_jsonschema()["properties"].items()
        if not prop.get("description")
    ]
    assert undescribed == []
    assert metadata.undescribed_fields() == []


def test_meltano_yml_declares_what_about_says():
    """Capabilities (structured-logging among them) and settings, with kinds matching types."""
    info = about()
    extractor = meltano_extractor()
    assert extractor["capabilities"] == info["capabilities"]
    assert "structured-logging" in extractor["capabilities"]
    kinds = {setting["name"]: setting.get("kind") for setting in extractor["settings"]}
    assert list(kinds) == list(info["settings"]["properties"])
    # Whole days, as the tap declares them (Meltano 4.4's `decimal` kind cannot pass a value
    # set in the environment to the tap: it fails to serialize the Decimal it parses).
    assert kinds["window_days"] == kinds["lookback_window_days"] == "integer"
    assert kinds["page_size"] == "integer"
    assert kinds["start_date"] == "date_iso8601"
    (api_key,) = [s for s in extractor["settings"] if s["name"] == "api_key"]
    assert api_key["sensitive"] is True


def test_python_versions_agree_everywhere():
    """--about (from the classifiers), the CI matrix and the README claim the same Pythons."""
    claimed = about()["supported_python_versions"]
    assert claimed == ["3.10", "3.11", "3.12", "3.13"]
    assert package_metadata.metadata("tap-amplemarket")["Requires-Python"] == f">={claimed[0]}"
    workflow = YAML(typ="safe").load((ROOT / ".github/workflows/test.yml").read_text())
    assert workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"] == claimed
    readme_ranges = re.findall(r"Python (3\.\d+)(?: to (3\.\d+)|\+)", metadata.README.read_text())
    assert readme_ranges
    assert set(readme_ranges) == {(claimed[0], claimed[-1])}


@pytest.mark.meltano
def test_meltano_config_set_changes_only_what_it_sets(tmp_path):
    """meltano.yml is kept in the form Meltano writes, so its comments and layout survive."""
    project = tmp_path / "meltano.yml"
    shutil.copy(metadata.MELTANO_YML, project)
    meltano = pathlib.Path(sys.executable).with_name("meltano")
    subprocess.run(
        [meltano, "config", "set", "tap-amplemarket", "page_size", "50"],
        cwd=tmp_path,
        env={"MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db", "PATH": "/usr/bin"},
        capture_output=True,
        check=True,
    )
    diff = difflib.ndiff(
        metadata.MELTANO_YML.read_text().splitlines(), project.read_text().splitlines()
    )
    changed = [line for line in diff if line[:2] in {"+ ", "- "}]
    assert changed == ["+     config:", "+       page_size: 50"]


@pytest.mark.meltano
def test_another_project_adds_the_tap_from_its_definition_with_typed_settings(tmp_path):
    meltano = str(pathlib.Path(sys.executable).with_name("meltano"))
    env = {"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", "PATH": "/usr/bin", "HOME": str(tmp_path)}

    def run(*args: str, cwd: pathlib.Path) -> str:
        done = subprocess.run(
            [meltano, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run("init", "elt", "--no_usage_stats", cwd=tmp_path)
    project = tmp_path / "elt"
    definition = str(metadata.PLUGIN_DEFINITION)
    run("add", "--plugin-type", "extractor", TapAmplemarket.name, "--from-ref", definition,
        "--no-install", cwd=project)  # fmt: skip
    run("config", "set", TapAmplemarket.name, "page_size", "50", cwd=project)
    run("config", "set", TapAmplemarket.name, "window_days", "5", cwd=project)

    config = json.loads(run("config", "print", TapAmplemarket.name, cwd=project))
    assert config["page_size"] == 50, "declared as integer: not the text '50'"
    assert config["window_days"] == 5
    assert config["api_url"] == "https://api.amplemarket.com"
    added = YAML(typ="safe").load((project / "meltano.yml").read_text())
    (extractor,) = added["plugins"]["extractors"]
    assert [s["name"] for s in extractor["settings"]] == [
        s["name"] for s in meltano_extractor()["settings"]
    ]
