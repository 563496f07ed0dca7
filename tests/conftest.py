"""Shared fixtures: a fake Amplemarket API on 127.0.0.1 and ways to run the tap against it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import typing as t
from collections import Counter

import backoff
import jsonschema
import pytest

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.conform import EXTRA
from tap_amplemarket.secrets import forget_all
from tap_amplemarket.tap import TapAmplemarket
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS

API_KEY = "test-api-key"
#: The streams whose records the fake dataset lists as they are (each a table); the others'
#: records are nested in their parent records (lead_list_entries in lead_lists' `leads`).
COLLECTIONS = tuple(endpoint.stream for endpoint in ENDPOINTS if not endpoint.detail)
#: Random, as a real key is: any five characters of it in a line are hidden (secrets.py),
#: and a key of English words would hide words of the tap's own lines too.
SECRET_LOOKING_KEY = "sk-live-q7Zx2mK8wR5f3c9a"
#: The tap's console entry point, run by this interpreter as the installed script would be.
TAP_COMMAND = (sys.executable, "-c", "from tap_amplemarket.cli import main; main()")


@pytest.fixture(autouse=True)
def _no_secret_of_an_earlier_test() -> t.Iterator[None]:
    """Secrets are remembered process-wide: one test's must not hide another's words."""
    forget_all()
    yield
    forget_all()


def read_until_killed(command: list[str], kill_after: int | None) -> tuple[list[str], int]:
    """Run `command`; SIGKILL it once it has printed `kill_after` RECORD lines (if given).

    Returns the stdout lines read (whole lines: reading stops at the one that makes
    `kill_after`) and the exit code.
    """
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        lines, records = [], 0
        for line in process.stdout:
            lines.append(line)
            records += '"type":"RECORD"' in line
            if kill_after is not None and records >= kill_after:
                os.kill(process.pid, signal.SIGKILL)
                break
        process.stdout.close()
        return lines, process.wait()


@dataclasses.dataclass
class SyncResult:
    messages: list[dict[str, t.Any]]
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str = "calls", key: str = "id") -> list[t.Any]:
        return [record[key] for record in self.records(stream)]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any] | None:
        return self.states[-1] if self.states else None

    def counts(self) -> Counter[str]:
        return Counter(m["stream"] for m in self.messages if m["type"] == "RECORD")


#: Per Singer message type: the fields it must have, and those it may have besides.
SINGER_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "SCHEMA": ({"stream", "schema", "key_properties"}, {"bookmark_properties"}),
    "RECORD": ({"stream", "record"}, {"version", "time_extracted"}),
    "STATE": ({"value"}, set()),
    "ACTIVATE_VERSION": ({"stream", "version"}, set()),
    "BATCH": ({"stream", "encoding", "manifest"}, set()),
}


def parse_messages(stdout: str) -> list[dict[str, t.Any]]:
    """The Singer messages on stdout: every line must be one (a stray print fails the test)."""
    messages = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        assert kind in SINGER_FIELDS, f"stdout line {number} is no Singer message: {line[:200]!r}"
        required, optional = SINGER_FIELDS[kind]
        fields = set(message) - {"type"}
        assert required <= fields <= required | optional, (
            f"stdout line {number}, a {kind}, has fields {sorted(fields)}: {line[:200]!r}"
        )
        messages.append(message)
    return messages


def stdout_messages(args: list[str], stdout: str) -> list[dict[str, t.Any]]:
    """What the tap run with `args` wrote: --about text, a --discover catalog, else messages."""
    if "--about" in args:
        return []
    if "--discover" in args:
        if stdout:
            assert isinstance(json.loads(stdout).get("streams"), list), stdout[:200]
        return []
    return parse_messages(stdout)


def strict_schema(schema: dict[str, t.Any], name: str = "") -> dict[str, t.Any]:
    """`schema` with every declared object closed (`additionalProperties: false`), except
    the free-form `_extra`: an undeclared field in a record fails validation."""
    strict = dict(schema)
    types = strict.get("type", [])
    if "object" in ([types] if isinstance(types, str) else types) and name != EXTRA:
        strict.setdefault("additionalProperties", False)
    if "properties" in strict:
        strict["properties"] = {
            key: strict_schema(value, key) for key, value in strict["properties"].items()
        }
    if isinstance(strict.get("items"), dict):
        strict["items"] = strict_schema(strict["items"])
    return strict


@functools.cache
def record_validator(schema_json: str) -> jsonschema.Draft7Validator:
    format_checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    # jsonschema checks date-time only with rfc3339-validator installed (a test extra).
    assert "date-time" in format_checker.checkers, "pip install rfc3339-validator"
    return jsonschema.Draft7Validator(
        strict_schema(json.loads(schema_json)), format_checker=format_checker
    )


def assert_records_conform(messages: list[t.Any]) -> None:
    """Every RECORD is valid, as a target would check it, against the latest SCHEMA of its
    stream (Draft 7, date-time formats checked, undeclared fields refused)."""
    schemas: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("type") == "SCHEMA":
            schemas[message["stream"]] = json.dumps(message["schema"], sort_keys=True)
        elif message.get("type") == "RECORD":
            stream = message["stream"]
            assert stream in schemas, f"a {stream} RECORD came before any {stream} SCHEMA"
            error = jsonschema.exceptions.best_match(
                record_validator(schemas[stream]).iter_errors(message["record"])
            )
            assert error is None, (
                f"{stream} record does not fit its SCHEMA at {error.json_path}: {error.message}"
            )


def sync(config: dict[str, t.Any], state: dict | None = None) -> SyncResult:
    """Run a full sync in this process, returning the Singer messages it wrote."""
    buffer = io.BytesIO()
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8")
    with contextlib.redirect_stdout(wrapper):
        TapAmplemarket(config=config, state=state, validate_config=True).sync_all()
        wrapper.flush()
    messages = parse_messages(buffer.getvalue().decode())
    assert_records_conform(messages)
    return SyncResult(messages)


def run_cli(
    args: list[str],
    config: dict[str, t.Any],
    tmp_path: t.Any,
    *,
    state: dict | None = None,
    env: dict[str, str] | None = None,
    cwd: pathlib.Path | None = None,
    timeout: float = 120,
) -> SyncResult:
    """Run the installed `tap-amplemarket` console script as a user would (its code from
    `cwd`, if given: `-c` puts the working directory first on sys.path)."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    command = [*TAP_COMMAND, "--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        command += ["--state", str(state_file)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
    )
    messages = stdout_messages(args, completed.stdout)
    assert_records_conform(messages)
    return SyncResult(messages, completed.stdout, completed.stderr, completed.returncode)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry 5xx and broken bodies after milliseconds, not seconds (in-process runs only)."""
    monkeypatch.setattr(
        AmplemarketStream, "backoff_wait_generator", lambda self: backoff.constant(0.01)
    )
    monkeypatch.setattr(AmplemarketStream, "backoff_jitter", lambda self, value: value)


@pytest.fixture
def api() -> t.Iterator[FakeAmplemarketAPI]:
    with FakeAmplemarketAPI(sample_dataset(250), api_key=API_KEY, request_budget=1000) as server:
        yield server


def config_for(api: FakeAmplemarketAPI, **overrides: t.Any) -> dict[str, t.Any]:
    """A config covering the sample datasets (calls in the 60 days before 2026-06-01)."""
    return {
        "api_key": api.api_key,
        "api_url": api.url,
        "start_date": "2026-03-01T00:00:00Z",
        "end_date": "2026-06-02T00:00:00Z",
        "page_size": 25,
        "window_days": 14,
        "max_requests_per_minute": 100_000,  # a runaway loop hits the request budget fast
        **overrides,
    }


@pytest.fixture
def config(api: FakeAmplemarketAPI) -> dict[str, t.Any]:
    return config_for(api)
