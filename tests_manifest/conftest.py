"""manifest/manifest.yaml run by airbyte-cdk's `source-declarative-manifest` (from its own
virtualenv, `make test-manifest`) against the fake API, as Airbyte runs a low-code source.

The tests themselves run in the project's virtualenv: the fake API, the tap (to compare
with) and the Airbyte protocol models are there.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import typing as t

import pytest
import yaml
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

#: What the Connector Builder's web app asks of the CDK's `connector_builder` handler when a
#: YAML is imported: migrated to the current form (`url`, not `url_base` + `path`) and
#: normalised; the result is the manifest the Builder keeps, and tests, and publishes.
BUILDER_RESOLVE = {"__should_migrate": True, "__should_normalize": True}
#: A test read in the Builder. Not normalised again: the handler cannot build the streams of
#: its own normalised form (a parent stream becomes a `$ref` it leaves unresolved).
BUILDER_TEST_READ = {"__should_migrate": True}

__all__ = [
    "BUILDER_RESOLVE",
    "BUILDER_TEST_READ",
    "FakeAmplemarketAPI",
    "Run",
    "SampleFactory",
    "builder",
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


#: Run in .venv-cdk: the `connector_builder` handler's own entry point (`handle_request`, what
#: its main module runs) on each request of stdin (a JSON list of [config, catalog] pairs), in
#: one process, so that each stream's test read does not pay the CDK's start-up; prints each
#: answer on a line.
HANDLE_REQUESTS = """
import json, pathlib, sys, tempfile
from airbyte_cdk.connector_builder.main import handle_request
with tempfile.TemporaryDirectory() as tmp:
    for index, (config, catalog) in enumerate(json.load(sys.stdin)):
        files = []
        for name, content in (("config", config), ("catalog", catalog)):
            path = pathlib.Path(tmp, f"{name}-{index}.json")
            path.write_text(json.dumps(content))
            files += [f"--{name}", str(path)]
        print(handle_request(["read", *files]), flush=True)
"""


def builder(
    command: str,
    manifest: dict[str, t.Any],
    config: dict[str, t.Any],
    streams: t.Sequence[str | None] = (None,),
) -> list[t.Any]:
    """The CDK's `connector_builder` handler (what the Builder's server runs) on `manifest`:
    `resolve_manifest` (the manifest it keeps) or a `test_read` of each of `streams`. Its
    answers, validated as Airbyte messages."""
    executable = pathlib.Path(os.environ.get("SOURCE_DECLARATIVE_MANIFEST", ""))
    assert executable.is_file(), "set SOURCE_DECLARATIVE_MANIFEST (make does)"
    flags = BUILDER_RESOLVE if command == "resolve_manifest" else BUILDER_TEST_READ
    config = {**config, **flags, "__command": command, "__injected_declarative_manifest": manifest}
    requests = []
    for stream in streams:
        configured = []
        if stream is not None:
            declared = {"name": stream, "json_schema": {}, "supported_sync_modes": ["full_refresh"]}
            configured.append(
                {
                    "stream": declared,
                    "sync_mode": "full_refresh",
                    "destination_sync_mode": "overwrite",
                }
            )
        requests.append([config, {"streams": configured}])
    completed = subprocess.run(
        [executable.with_name("python"), "-c", HANDLE_REQUESTS],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Each answer is a RECORD (or a TRACE error); the source in this process logs around it.
    answers = [m for m in validated(completed.stdout) if m.type == Type.RECORD or m.trace]
    for answer in answers:
        if answer.type != Type.RECORD:
            raise AssertionError(answer.trace.error.stack_trace or completed.stderr)
    assert len(answers) == len(requests), completed.stderr
    return [answer.record.data for answer in answers]


@pytest.fixture(scope="session")
def resolved_manifest(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """manifest.yaml as the Builder keeps it once imported (`resolve_manifest`), in a file."""
    tmp_path = tmp_path_factory.mktemp("resolve")
    manifest = yaml.safe_load(MANIFEST.read_text())
    (answer,) = builder("resolve_manifest", manifest, {"api_key": "unused"})
    resolved = answer["manifest"]
    path = tmp_path / "resolved.json"
    path.write_text(json.dumps(resolved))
    return path


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
