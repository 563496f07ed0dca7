"""The Airbyte connector image's declarations agree with each other and with the source.

metadata.yaml (what Airbyte's registry reads of a connector), the Dockerfile's labels and
entry point, the package version, and what `source-amplemarket spec` and `discover` say.
No Docker here: `make image-test` builds and runs the image itself.
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[1]
SOURCE = str(pathlib.Path(sys.executable).with_name("source-amplemarket"))
VERSION = importlib.metadata.version("tap-amplemarket")
#: What Airbyte's ConnectorMetadataDefinitionV0 requires of `data`.
REQUIRED = {
    "name",
    "definitionId",
    "connectorType",
    "dockerRepository",
    "dockerImageTag",
    "license",
    "documentationUrl",
    "githubIssueLabel",
    "connectorSubtype",
    "releaseStage",
}


@pytest.fixture(scope="module")
def metadata():
    document = yaml.safe_load((ROOT / "metadata.yaml").read_text())
    assert document["metadataSpecVersion"] == "1.0"
    return document["data"]


@pytest.fixture(scope="module")
def dockerfile():
    return (ROOT / "Dockerfile").read_text()


def label(dockerfile: str, name: str) -> str:
    (value,) = re.findall(rf'^LABEL {re.escape(name)}="([^"]*)"$', dockerfile, re.MULTILINE)
    return value


def source(*args: str) -> dict:
    done = subprocess.run([SOURCE, *args], capture_output=True, text=True, check=True)
    (line,) = done.stdout.splitlines()
    return json.loads(line)


@pytest.fixture(scope="module")
def spec():
    return source("spec")["spec"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "config.json"
    config.write_text(json.dumps({"api_key": "not-used-by-discover"}))
    return source("discover", "--config", str(config))["catalog"]


def test_metadata_has_what_airbyte_requires_of_a_source(metadata):
    assert not REQUIRED - metadata.keys(), "missing"
    assert str(uuid.UUID(metadata["definitionId"])) == metadata["definitionId"]
    assert metadata["connectorType"] == "source"
    assert metadata["connectorSubtype"] == "api"
    assert metadata["releaseStage"] in {"alpha", "beta", "generally_available", "custom"}
    assert (
        metadata["license"] == importlib.metadata.metadata("tap-amplemarket")["License-Expression"]
    )


def test_metadata_names_this_version_and_the_image_the_dockerfile_builds(metadata, dockerfile):
    assert metadata["dockerImageTag"] == VERSION
    assert label(dockerfile, "io.airbyte.version") == VERSION
    assert label(dockerfile, "io.airbyte.name") == metadata["dockerRepository"]


def test_the_image_starts_source_amplemarket_as_docker_and_airbyte_do(dockerfile):
    assert 'ENTRYPOINT ["source-amplemarket"]' in dockerfile
    assert 'ENV AIRBYTE_ENTRYPOINT="source-amplemarket"' in dockerfile
    (user,) = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user not in {"root", "0"}


def test_allowed_hosts_let_the_source_reach_its_default_api_url(metadata, spec):
    api_url = spec["connectionSpecification"]["properties"]["api_url"]["default"]
    assert urlsplit(api_url).hostname in metadata["allowedHosts"]["hosts"]


def test_spec_offers_incremental_syncs_exactly_when_a_stream_has_a_cursor(spec, catalog):
    incremental = [s for s in catalog["streams"] if "incremental" in s["supported_sync_modes"]]
    assert spec["supportsIncremental"] is bool(incremental)
    for stream in catalog["streams"]:
        assert "full_refresh" in stream["supported_sync_modes"]
    for stream in incremental:
        assert stream["source_defined_cursor"] is True
        assert stream["default_cursor_field"]


def test_the_icon_is_an_svg_with_a_title(metadata):
    root = ET.parse(ROOT / metadata["icon"]).getroot()  # noqa: S314 (our own file)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title") is not None


def test_documentation_url_points_at_the_readmes_airbyte_section(metadata):
    anchor = metadata["documentationUrl"].rsplit("#", 1)[1]
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert anchor in {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
