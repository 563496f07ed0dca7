"""manifest/manifest.yaml run by airbyte-cdk's `source-declarative-manifest` (from its own
virtualenv, `make test-manifest`) against the fake API, as Airbyte runs a low-code source.

The tests themselves run in the project's virtualenv: the fake API, the tap (to compare
with) and the Airbyte protocol models are there.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import subprocess
import typing as t

import pytest
from airbyte_protocol.models import Type

from tests import test_airbyte as airbyte_run
from tests.conftest import SECRET_LOOKING_KEY, config_for

# The fake API, imported here only.
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.dataset import SampleFactory
from tests.test_airbyte import validated

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest" / "manifest.yaml"
END = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
CALLS, DAYS = 300, 60
PATH_PREFIX = "/amplemarket-proxy"

__all__ = [
    "FakeAmplemarketAPI",
    "Run",
    "SampleFactory",
    "manifest_command",
    "run_manifest",
    "sample_dataset",
]


class Run(airbyte_run.Run):
    """What a command printed, as `source-amplemarket`'s tests read it, and more."""

    @property
    def errors(self) -> list[str]:
        """The TRACE errors' messages (the CDK's STREAM_STATUS traces are not errors)."""
        return [trace.error.message for trace in self.of_type(Type.TRACE) if trace.error]

    @property
    def logs(self) -> str:
        return "\n".join(log.message for log in self.of_type(Type.LOG))


def manifest_command(
    command: str,
    tmp_path: pathlib.Path,
    config: dict[str, t.Any] | None = None,
    *,
    catalog: dict[str, t.Any] | None = None,
    state: t.Any = None,
    manifest: pathlib.Path = MANIFEST,
) -> list[str]:
    """`source-declarative-manifest <command> ... --manifest-path manifest`, its inputs
    written to files in `tmp_path`."""
    executable = os.environ.get("SOURCE_DECLARATIVE_MANIFEST", "")
    assert pathlib.Path(executable).is_file(), "set SOURCE_DECLARATIVE_MANIFEST (make does)"
    inputs = airbyte_run.input_files(tmp_path, config=config, catalog=catalog, state=state)
    return [executable, command, *inputs, "--manifest-path", str(manifest)]


def run_manifest(
    command: str,
    tmp_path: pathlib.Path,
    config: dict[str, t.Any] | None = None,
    **inputs: t.Any,
) -> Run:
    """Run `manifest_command`; every stdout line must validate as an Airbyte protocol message
    with no field the protocol lacks, and the key must not be printed."""
    args = manifest_command(command, tmp_path, config, **inputs)
    completed = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    run = Run(validated(completed.stdout), completed.stdout, completed.stderr, completed.returncode)
    assert SECRET_LOOKING_KEY not in completed.stdout + completed.stderr, "key printed"
    return run


@pytest.fixture
def api() -> t.Iterator[FakeAmplemarketAPI]:
    dataset = sample_dataset(CALLS, days=DAYS, end=END)
    with FakeAmplemarketAPI(
        dataset, api_key=SECRET_LOOKING_KEY, request_budget=2000, path_prefix=PATH_PREFIX
    ) as server:
        yield server


@pytest.fixture
def config(api: FakeAmplemarketAPI) -> dict[str, t.Any]:
    """The tap's test config (the settings the manifest lacks are ignored, as Airbyte does),
    with the API behind a path prefix, as behind a proxy: every URL must keep it."""
    return config_for(api, api_url=api.url + PATH_PREFIX)
