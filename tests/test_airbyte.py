"""`source-amplemarket`, the tap in the Airbyte protocol, run as Airbyte runs it.

Every line each command prints must parse as an Airbyte protocol message
(airbyte-protocol-models-pdv2) and carry no field the protocol does not define.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
import typing as t

import jsonschema
import pytest
from airbyte_protocol.models import AirbyteMessage, AirbyteStateBlob, Type
from pydantic import BaseModel

from tap_amplemarket.airbyte import SDK_SETTINGS, trace_error
from tap_amplemarket.secrets import redacted_strings, remember
from tap_amplemarket.tap import STREAM_TYPES, TapAmplemarket
from tap_amplemarket.timefmt import isoformat_z, parse_timestamp
from tests.conftest import SECRET_LOOKING_KEY, config_for, read_until_killed, sync
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.test_incremental import late_call

SOURCE = str(pathlib.Path(sys.executable).with_name("source-amplemarket"))
TAP = str(pathlib.Path(sys.executable).with_name("tap-amplemarket"))
DEBUG = {"LOGLEVEL": "DEBUG", "TAP_AMPLEMARKET_LOGLEVEL": "DEBUG"}
PAYLOAD = {
    Type.SPEC: "spec",
    Type.CONNECTION_STATUS: "connectionStatus",
    Type.CATALOG: "catalog",
    Type.RECORD: "record",
    Type.STATE: "state",
    Type.TRACE: "trace",
    Type.LOG: "log",
}


def assert_only_protocol_fields(model: t.Any, where: str = "message") -> None:
    """The models accept unknown fields; a misspelt one must fail here."""
    if isinstance(model, AirbyteStateBlob):
        return  # the source's own state: free-form by design
    if isinstance(model, BaseModel):
        assert not model.model_extra, f"{where} has unknown fields {sorted(model.model_extra)}"
        for name in type(model).model_fields:
            assert_only_protocol_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for item in model:
            assert_only_protocol_fields(item, where)


def validated(stdout: str) -> list[AirbyteMessage]:
    messages = []
    for line in stdout.splitlines():
        message = AirbyteMessage.model_validate_json(line)
        assert getattr(message, PAYLOAD[message.type]) is not None, line[:200]
        assert_only_protocol_fields(message)
        messages.append(message)
    return messages


@dataclasses.dataclass
class Run:
    messages: list[AirbyteMessage]
    stdout: str
    stderr: str
    returncode: int

    def of_type(self, kind: Type) -> list[t.Any]:
        return [getattr(m, PAYLOAD[kind]) for m in self.messages if m.type == kind]

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [r.data for r in self.of_type(Type.RECORD) if r.stream == stream]

    def stream_states(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            s.stream.stream_state.model_dump()
            for s in self.of_type(Type.STATE)
            if s.stream.stream_descriptor.name == stream
        ]

    @property
    def error(self) -> t.Any:
        (trace,) = [trace for trace in self.of_type(Type.TRACE) if trace.error]
        return trace.error

    def statuses(self) -> dict[str, list[str]]:
        """Each stream's STREAM_STATUS traces, in order."""
        found: dict[str, list[str]] = {}
        for trace in self.of_type(Type.TRACE):
            if trace.stream_status is not None:
                name = trace.stream_status.stream_descriptor.name
                found.setdefault(name, []).append(trace.stream_status.status.value)
        return found


def input_files(tmp_path: pathlib.Path, **inputs: t.Any) -> list[str]:
    """`--config <file>`, `--catalog <file>`, `--state <file>`: each input given, written to a
    JSON file in `tmp_path`, as Airbyte passes them to a source."""
    args = []
    for name, content in inputs.items():
        if content is not None:
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(content))
            args += [f"--{name}", str(path)]
    return args


def run_source(
    command: str,
    tmp_path: pathlib.Path,
    config: dict[str, t.Any] | None = None,
    *,
    catalog: dict[str, t.Any] | None = None,
    state: t.Any = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run the installed `source-amplemarket` as Airbyte does; every stdout line is checked."""
    args = [SOURCE, command, *input_files(tmp_path, config=config, catalog=catalog, state=state)]
    completed = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    run = Run(validated(completed.stdout), completed.stdout, completed.stderr, completed.returncode)
    for key in (SECRET_LOOKING_KEY, (config or {}).get("api_key")):
        assert not key or str(key) not in completed.stdout + completed.stderr, "key printed"
    return run


def configured_catalog(
    catalog: t.Any, streams: t.Collection[str] | None = None, full_refresh: t.Collection[str] = ()
) -> dict[str, t.Any]:
    """A configured catalog as Airbyte builds it from `discover`: incremental where offered."""
    configured = []
    for stream in catalog.streams:
        if streams is not None and stream.name not in streams:
            continue
        modes = [mode.value for mode in stream.supported_sync_modes]
        incremental = "incremental" in modes and stream.name not in full_refresh
        configured.append(
            {
                "stream": stream.model_dump(mode="json", exclude_none=True),
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": "append_dedup" if incremental else "overwrite",
            }
        )
    return {"streams": configured}


def per_stream_state(run: Run, previous: list[dict[str, t.Any]] = ()) -> list[dict[str, t.Any]]:
    """What Airbyte hands the next read: the last STATE of each stream, as a list."""
    latest = {entry["stream"]["stream_descriptor"]["name"]: entry for entry in previous}
    for state in run.of_type(Type.STATE):
        name = state.stream.stream_descriptor.name
        latest[name] = state.model_dump(mode="json", exclude_none=True)
    return list(latest.values())


@pytest.fixture
def api():
    with FakeAmplemarketAPI(
        sample_dataset(250), api_key=SECRET_LOOKING_KEY, request_budget=1000
    ) as server:
        yield server


@pytest.fixture
def config(api):
    return config_for(api)


@pytest.fixture
def catalog(config, tmp_path):
    (message,) = run_source("discover", tmp_path, config).messages
    return message.catalog


def test_spec_is_the_taps_own_settings_without_the_sdks(tmp_path):
    (message,) = run_source("spec", tmp_path).messages

    spec = message.spec.connectionSpecification
    tap_settings = TapAmplemarket.config_jsonschema["properties"]
    assert set(spec["properties"]) == set(tap_settings) - SDK_SETTINGS
    assert {"api_key", "start_date", "window_days", "max_retries"} <= set(spec["properties"])
    assert not {"stream_maps", "batch_config", "flattening_enabled"} & set(spec["properties"])
    assert "emit_activate_version_messages" not in spec["properties"], "no Airbyte counterpart"
    assert spec["required"] == ["api_key"]
    assert spec["properties"]["api_key"]["airbyte_secret"] is True
    assert [s for s, v in spec["properties"].items() if v.get("airbyte_secret")] == ["api_key"]
    assert message.spec.supportsIncremental is True


def test_the_spec_validates_configs_as_an_airbyte_client_would(tmp_path, config):
    (message,) = run_source("spec", tmp_path).messages
    spec = message.spec.connectionSpecification

    jsonschema.validate(config, spec)
    with pytest.raises(jsonschema.ValidationError, match="'api_key' is a required property"):
        jsonschema.validate({"api_url": config["api_url"]}, spec)


def test_check_succeeds_with_one_request(api, config, tmp_path):
    run = run_source("check", tmp_path, config)

    assert run.returncode == 0
    assert [m.connectionStatus.status.value for m in run.messages] == ["SUCCEEDED"]
    assert [r.path for r in api.requests] == ["/calls/dispositions"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"api_key": "sk-live-WRONG-KEY-0c1d2e"}, "Amplemarket rejected the API key (401)"),
        ({"api_url": "http://127.0.0.1:9", "max_retries": 1}, "api_url http://127.0.0.1:9 has not"),
        ({"page_size": 0}, "page_size must be greater than 0 (got 0)"),
        ({"start_date": "yesterday"}, "start_date 'yesterday' is not an ISO 8601 date-time"),
        ({"api_key": None}, "None is not of type 'string'"),
    ],
)
def test_check_fails_with_the_taps_own_one_line_and_exit_0(config, tmp_path, settings, message):
    bad_config = {**config, **settings}

    run = run_source("check", tmp_path, bad_config)
    singer = subprocess.run(
        [TAP, "--config", tmp_path / "config.json"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 0
    (status,) = run.of_type(Type.CONNECTION_STATUS)
    assert status.status.value == "FAILED"
    assert message in status.message
    assert "\n" not in status.message
    assert message in singer.stderr, "the Singer tap says the same"


def test_check_never_shows_the_key_an_error_body_echoes(api, config, tmp_path):
    api.fail_next("echo-400", path="/calls/dispositions")

    run = run_source("check", tmp_path, config)  # which fails on any sight of the key

    (status,) = run.of_type(Type.CONNECTION_STATUS)
    assert status.status.value == "FAILED"
    assert "(400)" in status.message  # the body, which echoes the key, is not quoted


def test_check_fails_when_api_url_answers_404_as_a_wrong_base_url_would(api, config, tmp_path):
    run = run_source("check", tmp_path, {**config, "api_url": api.url + "/v9"})

    assert run.returncode == 0
    (status,) = run.of_type(Type.CONNECTION_STATUS)
    assert status.status.value == "FAILED"
    assert "404 for /calls/dispositions" in status.message
    assert status.message.endswith("check api_url")


def test_check_gives_up_after_a_few_attempts_whatever_max_retries_says(api, config, tmp_path):
    api.fail_next("503", times=None, path="/calls/dispositions")
    settings = {key: value for key, value in config.items() if key != "max_retries"}

    run = run_source("check", tmp_path, settings)

    (status,) = run.of_type(Type.CONNECTION_STATUS)
    assert status.status.value == "FAILED"
    assert "check api_url" in status.message, "the API has not answered once"
    assert len(api.requests_to("/calls/dispositions")) == 3, "not the 8 attempts of a sync"


def test_discover_lists_every_stream_with_keys_and_cursor(api, tmp_path, config):
    run = run_source("discover", tmp_path, config)

    (catalog,) = run.of_type(Type.CATALOG)
    streams = {stream.name: stream for stream in catalog.streams}
    assert list(streams) == sorted(stream.name for stream in STREAM_TYPES)
    calls = streams["calls"]
    assert [mode.value for mode in calls.supported_sync_modes] == ["full_refresh", "incremental"]
    assert calls.source_defined_cursor is True
    assert calls.default_cursor_field == ["start_date"]
    assert calls.source_defined_primary_key == [["id"]]
    assert calls.json_schema["properties"]["start_date"]["format"] == "date-time"
    assert streams["lead_list_entries"].source_defined_primary_key == [["lead_list_id"], ["id"]]
    assert streams["excluded_domains"].source_defined_primary_key == [["domain"]]
    for name, stream in streams.items():
        if name != "calls":
            assert [mode.value for mode in stream.supported_sync_modes] == ["full_refresh"]
            assert stream.default_cursor_field is None
    assert api.requests == [], "discover needs no request"


def test_read_delivers_what_the_singer_tap_delivers(api, tmp_path, config, catalog):
    started = time.time() * 1000
    run = run_source("read", tmp_path, config, catalog=configured_catalog(catalog))
    finished = time.time() * 1000
    singer = sync(config)

    assert run.returncode == 0, run.stderr[-2000:]
    for stream in (stream_type.name for stream_type in STREAM_TYPES):
        # In any order: windows of calls are read at once, their pages written as they come.
        as_text = [sorted(map(json.dumps, r.records(stream))) for r in (run, singer)]
        assert as_text[0] == as_text[1], stream
        assert run.records(stream), f"no {stream} records"
    assert {r["id"] for r in run.records("calls")} == {c["id"] for c in api.data.calls}
    assert all(started <= r.emitted_at <= finished for r in run.of_type(Type.RECORD))
    assert {m.type for m in run.messages} == {Type.RECORD, Type.STATE, Type.TRACE}
    assert all(trace.stream_status for trace in run.of_type(Type.TRACE))
    for stream_type in STREAM_TYPES:  # each read to its end
        assert timeline(run, stream_type.name) == ["STARTED", "RUNNING", "RECORD", "COMPLETE"]
    # The Singer tap's ACTIVATE_VERSION has no Airbyte counterpart: not a line of stdout.
    assert "ACTIVATE_VERSION" in {m["type"] for m in singer.messages}
    assert "ACTIVATE_VERSION" not in run.stdout


def timeline(run: Run, stream: str) -> list[str]:
    """A stream's statuses and records in the order sent, a run of records as one RECORD."""
    seen: list[str] = []
    for message in run.messages:
        if message.type == Type.RECORD and message.record.stream == stream:
            seen += [] if seen[-1:] == ["RECORD"] else ["RECORD"]
        elif message.type == Type.TRACE and message.trace.stream_status is not None:
            status = message.trace.stream_status
            seen += [status.status.value] if status.stream_descriptor.name == stream else []
    return seen


def test_a_stream_skipped_or_cut_short_is_incomplete_and_the_others_complete(
    api, tmp_path, config, catalog
):
    """INCOMPLETE tells a destination in Overwrite mode to keep the table it has."""
    api.fail_next("404", times=None, path="/sequences")  # a plan without it
    gone = api.data.lead_lists[1]["id"]  # a list deleted after it was listed
    api.fail_next("404", times=None, path=f"/lead-lists/{gone}")
    streams = ["users", "sequences", "lead_lists", "lead_list_entries"]

    run = run_source("read", tmp_path, config, catalog=configured_catalog(catalog, streams))

    assert run.returncode == 0, run.stderr[-2000:]
    assert timeline(run, "sequences") == ["STARTED", "INCOMPLETE"]
    assert timeline(run, "lead_list_entries") == ["STARTED", "RUNNING", "RECORD", "INCOMPLETE"]
    for whole in ("users", "lead_lists"):
        assert timeline(run, whole) == ["STARTED", "RUNNING", "RECORD", "COMPLETE"]
    assert set(run.statuses()) == set(streams), "statuses only for the configured streams"


def test_read_checkpoints_calls_per_window_as_the_singer_tap_does(api, tmp_path, config, catalog):
    # Small pages make several windows; one at a time, so both runs plan the same ones.
    config = {**config, "page_size": 2, "max_concurrent_requests": 1}
    run = run_source("read", tmp_path, config, catalog=configured_catalog(catalog, ["calls"]))
    singer = sync(config)

    bookmarks = [s["replication_key_value"] for s in run.stream_states("calls") if s]
    singer_bookmarks = []
    for state in singer.states:
        value = state["bookmarks"].get("calls", {}).get("replication_key_value")
        if value and value not in singer_bookmarks:
            singer_bookmarks.append(value)
    assert bookmarks == singer_bookmarks
    assert len(bookmarks) >= 4, "a STATE after each window"
    assert bookmarks[-1] == config["end_date"]
    for message in run.of_type(Type.STATE):
        assert message.type.value == "STREAM"
        assert message.stream.stream_descriptor.name == "calls", "state of configured streams only"


def test_read_only_the_configured_streams(api, tmp_path, config, catalog):
    run = run_source("read", tmp_path, config, catalog=configured_catalog(catalog, ["tasks"]))

    assert run.returncode == 0, run.stderr[-2000:]
    assert {r.stream for r in run.of_type(Type.RECORD)} == {"tasks"}
    assert len(run.records("tasks")) == len(api.data.tasks)
    assert api.requests_to("/users"), "the parent is read for its ids, not emitted"
    assert not api.requests_to("/calls")
    assert {s.stream.stream_descriptor.name for s in run.of_type(Type.STATE)} == {"tasks"}


def test_incremental_asked_of_a_stream_without_a_cursor_is_read_in_full_with_a_warning(
    api, tmp_path, config, catalog
):
    configured = configured_catalog(catalog, ["users"])
    configured["streams"][0]["sync_mode"] = "incremental"  # discover offers only full_refresh

    run = run_source("read", tmp_path, config, catalog=configured)

    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(r["id"] for r in run.records("users")) == sorted(u["id"] for u in api.data.users)
    warning = "users has no cursor, so it is read in full every time: configure it as full_refresh"
    assert (run.stdout + run.stderr).count(warning) == 1


def test_a_misspelt_setting_stops_a_read_as_a_config_error(api, tmp_path, config, catalog):
    settings = {k: v for k, v in config.items() if k != "start_date"}
    settings["start_dat"] = config["start_date"]
    run = run_source("read", tmp_path, settings, catalog=configured_catalog(catalog, ["users"]))

    assert run.returncode == 1
    assert run.error.failure_type.value == "config_error"
    assert "start_dat" in run.error.message
    assert api.requests == []


def test_an_unknown_setting_is_warned_about_once_in_a_read(api, tmp_path, config, catalog):
    settings = {**config, "colour": "blue"}
    run = run_source("read", tmp_path, settings, catalog=configured_catalog(catalog, ["users"]))

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("'colour'") == 1


def test_an_incremental_read_resumes_from_airbyte_state_and_full_refresh_ignores_it(
    api, tmp_path, config, catalog
):
    calls_only = configured_catalog(catalog, ["calls"])
    first = run_source("read", tmp_path, config, catalog=calls_only)
    newest = first.stream_states("calls")[-1]["replication_key_value"]
    late = late_call(api, "2026-06-01T12:00:00Z")
    state = per_stream_state(first)

    second = run_source("read", tmp_path, config, catalog=calls_only, state=state)
    singer_state = {"bookmarks": {"calls": first.stream_states("calls")[-1]}}
    legacy = run_source("read", tmp_path, config, catalog=calls_only, state=singer_state)
    full = run_source(
        "read",
        tmp_path,
        config,
        catalog=configured_catalog(catalog, ["calls"], full_refresh=["calls"]),
        state=state,
    )

    lookback = parse_timestamp(newest) - datetime.timedelta(days=3)
    for run in (second, legacy):
        ids = [r["id"] for r in run.records("calls")]
        assert late["id"] in ids
        assert len(ids) < len(first.records("calls")) / 4
        assert all(r["start_date"] >= isoformat_z(lookback) for r in run.records("calls"))
        assert run.stream_states("calls")[-1]["replication_key_value"] == config["end_date"]
    assert {r["id"] for r in full.records("calls")} == {c["id"] for c in api.data.calls}, (
        "full refresh reads everything"
    )


def test_killed_reads_resume_from_their_last_state_without_losing_a_call(tmp_path):
    """SIGKILL `read` at random points; each rerun gets the per-stream state Airbyte kept."""
    rng = random.Random(20261125)
    data = sample_dataset(400, days=60)
    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY) as api:
        config = config_for(api, page_size=10, window_days=5, lookback_window_days=0)
        (discovered,) = run_source("discover", tmp_path, config).messages
        catalog = configured_catalog(discovered.catalog, ["calls"])
        delivered: set[str] = set()
        state: list[dict[str, t.Any]] = []
        kills = 0
        for _attempt in range(30):
            paths = {}
            for name, content in (("config", config), ("catalog", catalog), ("state", state)):
                paths[name] = tmp_path / f"{name}.json"
                paths[name].write_text(json.dumps(content))
            kill_after = rng.randint(1, 150) if kills < 5 else None
            command = [SOURCE, "read", *(f"--{n}={p}" for n, p in paths.items())]
            lines, returncode = read_until_killed(command, kill_after)
            kills += kill_after is not None
            if lines and not lines[-1].endswith("\n"):
                lines.pop()  # cut by the kill, as Airbyte would drop it
            run = Run(validated("".join(lines)), "", "", returncode)
            delivered |= {r["id"] for r in run.records("calls")}
            state = per_stream_state(run, state)
            if returncode == 0:
                break
        assert kills == 5
        assert returncode == 0
        assert delivered == {call["id"] for call in data.calls}


def test_sigterm_ends_a_read_by_the_signal_with_every_line_whole(tmp_path):
    """Airbyte and PyAirbyte stop a connector with SIGTERM and expect it to die by it."""
    data = sample_dataset(1000, days=60)  # 100 pages of 10, paced at 10 a second
    with FakeAmplemarketAPI(data, api_key=SECRET_LOOKING_KEY) as api:
        config = config_for(api, page_size=10, window_days=5, max_requests_per_minute=600)
        (discovered,) = run_source("discover", tmp_path, config).messages
        paths = {}
        catalog = configured_catalog(discovered.catalog, ["calls"])
        for name, content in (("config", config), ("catalog", catalog)):
            paths[name] = tmp_path / f"{name}.json"
            paths[name].write_text(json.dumps(content))
        with (tmp_path / "stderr.log").open("w") as stderr:
            process = subprocess.Popen(
                [SOURCE, "read", *(f"--{n}={p}" for n, p in paths.items())],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if '"type":"STATE"' in line:
                    process.send_signal(signal.SIGTERM)
                    break
            output = "".join(lines) + process.stdout.read()  # one buffer: nothing skipped
            process.stdout.close()
            returncode = process.wait(timeout=60)

    assert returncode == -signal.SIGTERM, (tmp_path / "stderr.log").read_text()[-2000:]
    run = Run(validated(output), output, "", returncode)  # every line a whole message
    assert run.of_type(Type.STATE), "the checkpoint it had reached is out"
    assert len(run.records("calls")) < len(data.calls), "it stopped early"


@pytest.mark.parametrize("command", ["check", "discover"])
def test_a_sigterm_once_the_answer_is_out_is_no_error(api, config, tmp_path, command):
    """PyAirbyte stops a source with SIGTERM as soon as it has read the answer."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    # The signal arrives the moment the answer is written, as PyAirbyte's would.
    script = (
        "import os, signal\n"
        "from tap_amplemarket import airbyte\n"
        "emit = airbyte.AirbyteWriter.emit\n"
        "def emit_then_stopped(self, message):\n"
        "    emit(self, message)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "airbyte.AirbyteWriter.emit = emit_then_stopped\n"
        f"airbyte.main([{command!r}, '--config', {str(tmp_path / 'config.json')!r}])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    (answer,) = validated(completed.stdout)
    assert answer.type in {Type.CONNECTION_STATUS, Type.CATALOG}
    assert completed.returncode == -signal.SIGTERM
    assert "| ERROR" not in completed.stderr
    assert "Stopped by SIGTERM after answering" in completed.stderr


def test_the_key_never_shows_in_a_debug_read_with_retries(api, tmp_path, config, catalog):
    api.fail_next("503", times=1, path="/calls")

    run = run_source("read", tmp_path, config, catalog=configured_catalog(catalog), env=DEBUG)

    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG" in run.stderr, "debug logging was on"
    assert len(run.records("calls")) == len(api.data.calls)
    # run_source asserted the key is in neither stdout nor stderr


@pytest.mark.parametrize(
    ("fault", "failure_type", "message"),
    [
        ("auth", "config_error", "Amplemarket rejected the API key (401): check api_key"),
        ("400", "system_error", "Invalid date format (parameter: start_date_from)"),
        ("bad state", "config_error", "reset the connection's state"),
        ("unknown stream", "config_error", "does not have: meetings: refresh the source schema"),
        ("bad setting", "config_error", "lookback_window_days must not be negative (got -1)"),
    ],
)
def test_a_failed_read_ends_with_one_trace_error_and_a_non_zero_exit(
    api, tmp_path, config, catalog, fault, failure_type, message
):
    configured = configured_catalog(catalog, ["calls", "users"])
    state: t.Any = None
    if fault == "auth":
        config = {**config, "api_key": "sk-live-WRONG-KEY-0c1d2e"}
    elif fault == "400":
        api.fail_next("400", path="/calls")
    elif fault == "bad state":
        state = [{"type": "GLOBAL", "global": {"stream_states": []}}]
    elif fault == "unknown stream":
        users = configured["streams"][-1]
        configured["streams"].append({**users, "stream": {**users["stream"], "name": "meetings"}})
    elif fault == "bad setting":
        config = {**config, "lookback_window_days": -1}

    run = run_source("read", tmp_path, config, catalog=configured, state=state)

    assert run.returncode == 1
    assert run.messages[-1].type == Type.TRACE
    assert run.error.failure_type.value == failure_type
    assert message in run.error.message
    assert "\n" not in run.error.message
    assert run.error.stack_trace is None, "a fixable error is one line, not a traceback"
    assert "Traceback" not in run.stderr
    assert message in run.stderr.strip().splitlines()[-1]
    if fault in {"auth", "400"}:  # failed as it read: no stream read to its end
        assert {name: statuses[-1] for name, statuses in run.statuses().items()} == {
            "calls": "INCOMPLETE",
            "users": "INCOMPLETE",
        }


def test_an_empty_state_file_is_named_as_the_singer_tap_names_it(api, tmp_path, config, catalog):
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(configured_catalog(catalog, ["calls"])))
    (tmp_path / "state.json").write_text("")
    files = {name: str(tmp_path / f"{name}.json") for name in ("config", "catalog", "state")}

    completed = subprocess.run(
        [SOURCE, "read", *(arg for name, path in files.items() for arg in (f"--{name}", path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    (trace,) = validated(completed.stdout)
    assert completed.returncode == 1
    assert trace.trace.error.failure_type.value == "config_error"
    assert trace.trace.error.message == (
        f"The state file {files['state']} is empty: pass a file that holds one JSON document"
    )
    assert api.requests == []


def test_a_bug_is_reported_as_a_system_error_with_its_trace_and_no_key():
    try:
        raise KeyError(f"config {{'api_key': '{SECRET_LOOKING_KEY}'}}")
    except KeyError as exc:
        remember({"api_key": SECRET_LOOKING_KEY})
        message = redacted_strings(trace_error(exc))  # as main() emits it

    (parsed,) = validated(json.dumps(message))
    assert parsed.trace.error.failure_type.value == "system_error"
    assert "unexpected error (KeyError)" in parsed.trace.error.message
    assert "Traceback" in parsed.trace.error.stack_trace
    assert SECRET_LOOKING_KEY not in json.dumps(message)
