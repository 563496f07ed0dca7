"""The Connector Builder manifest, run by airbyte-cdk's declarative source: every stream,
every record, resumable calls windows, and the API's answers handled as the tap handles them."""

from __future__ import annotations

import datetime
import pathlib
import typing as t

import jsonschema
import pytest
import yaml
from airbyte_protocol.models import Status, Type

from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import STREAM_TYPES
from tap_amplemarket.timefmt import isoformat_z, parse_timestamp
from tests import test_airbyte as airbyte_run
from tests.conftest import read_until_killed, sync
from tests.test_airbyte import configured_catalog, per_stream_state, validated
from tests_manifest.conftest import (
    MANIFEST,
    Run,
    SampleFactory,
    manifest_command,
    run_manifest,
)

if t.TYPE_CHECKING:
    from tap_amplemarket.client import AmplemarketStream

WINDOWS = CallsStream.date_windows
assert WINDOWS is not None
#: Small pages: most streams of the sample data take several.
PAGE_SIZE = 7


def primary_key(
    stream_type: type[AmplemarketStream], record: dict[str, t.Any]
) -> tuple[t.Any, ...]:
    return tuple(record[key] for key in stream_type.primary_keys)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    """What `discover` answers: read from the manifest alone, so once for every test."""
    config = {"api_key": "unused-by-discover", "api_url": "http://127.0.0.1:9"}
    run = run_manifest("discover", tmp_path_factory.mktemp("discover"), config)
    (catalog,) = run.of_type(Type.CATALOG)
    return catalog


def read(
    tmp_path: pathlib.Path,
    config: dict[str, t.Any],
    catalog: t.Any,
    streams: t.Collection[str] | None = None,
    state: t.Any = None,
    *,
    manifest: pathlib.Path,
) -> Run:
    """A read of `manifest`: the resolved one (as the Builder keeps and publishes it)."""
    return run_manifest(
        "read",
        tmp_path,
        config,
        catalog=configured_catalog(catalog, streams),
        state=state,
        manifest=manifest,
    )


def test_spec_and_discover_declare_the_taps_streams(config, tmp_path, catalog):
    (spec,) = run_manifest("spec", tmp_path).of_type(Type.SPEC)
    assert spec.connectionSpecification  # the CDK's generic spec: the manifest's is below

    manifest = yaml.safe_load(MANIFEST.read_text())
    jsonschema.validate(config, manifest["spec"]["connection_specification"])
    streams = {stream.name: stream for stream in catalog.streams}
    assert list(streams) == [stream_type.name for stream_type in STREAM_TYPES]
    for stream_type in STREAM_TYPES:
        stream = streams[stream_type.name]
        assert stream.source_defined_primary_key == [[key] for key in stream_type.primary_keys]
        assert "_extra" not in stream.json_schema["properties"]
    assert [mode.value for mode in streams["calls"].supported_sync_modes] == [
        "full_refresh",
        "incremental",
    ]
    assert streams["calls"].default_cursor_field == ["start_date"]


def test_check_succeeds_and_fails_clearly_on_a_rejected_key_or_a_wrong_api_url(
    api, config, tmp_path
):
    (status,) = run_manifest("check", tmp_path, config).of_type(Type.CONNECTION_STATUS)
    assert status.status == Status.SUCCEEDED

    rejected = run_manifest("check", tmp_path, {**config, "api_key": "wrong-key"})
    (status,) = rejected.of_type(Type.CONNECTION_STATUS)
    assert status.status == Status.FAILED
    assert "rejected the API key" in status.message
    assert "check api_key" in status.message
    assert [r.status for r in api.requests][-1] == 401

    elsewhere = run_manifest("check", tmp_path, {**config, "api_url": api.url + "/not-the-api"})
    (status,) = elsewhere.of_type(Type.CONNECTION_STATUS)
    assert status.status == Status.FAILED
    assert "404" in status.message
    assert "check api_url" in status.message


def test_every_stream_delivers_every_record_the_tap_delivers(
    api, config, tmp_path, catalog, resolved_manifest
):
    # Any ISO 8601 form; pages small enough that every stream but two has several.
    config = {**config, "start_date": "2026-03-01T01:00:00+01:00", "page_size": PAGE_SIZE}
    run = read(tmp_path, config, catalog, manifest=resolved_manifest)

    assert run.returncode == 0, run.errors
    assert run.errors == []
    assert_calls_windows(api.requests_to("/calls"), config, run)  # the manifest's, not the tap's
    tap = sync({**config, "max_requests_per_minute": 100_000})
    for stream_type in STREAM_TYPES:
        name = stream_type.name
        records = run.records(name)
        keys = [primary_key(stream_type, record) for record in records]
        assert len(keys) == len(set(keys)), f"{name}: a record delivered twice"
        expected = {primary_key(stream_type, record) for record in tap.records(name)}
        assert expected, f"{name}: the sample data has records"
        assert set(keys) == expected, name
    assert {call["id"] for call in run.records("calls")} == {c["id"] for c in api.data.calls}
    assert all("leads" not in lead_list for lead_list in run.records("lead_lists"))
    assert all(entry["lead_list_id"] for entry in run.records("lead_list_entries"))
    for stream in catalog.streams:  # as a destination would validate them
        for record in run.records(stream.name):
            jsonschema.validate(record, stream.json_schema)


def assert_calls_windows(requests: list[t.Any], config: dict[str, t.Any], run: Run) -> None:
    """Calls were read in windows of the tap's first window size, each padded by a second as
    the tap pads them, with a STATE as they complete, not one at the end."""
    froms = {r.params[WINDOWS.from_param] for r in requests}
    first_window = datetime.timedelta(days=WINDOWS.first_window_days)
    span = parse_timestamp(config["end_date"]) - parse_timestamp(config["start_date"])
    assert len(froms) == -(-span // first_window)  # one query per window, pages aside
    assert all(set(r.params) >= {WINDOWS.from_param, WINDOWS.to_param} for r in requests)
    first = min(requests, key=lambda r: r.params[WINDOWS.from_param])
    assert first.params[WINDOWS.from_param] == "2026-02-28T23:59:59Z"
    assert first.params[WINDOWS.to_param] == "2026-03-08T00:00:00Z"
    bookmarks = [state["start_date"] for state in run.stream_states("calls")]
    assert len(set(bookmarks)) > 3
    assert bookmarks == sorted(bookmarks)
    assert bookmarks[-1] == max(call["start_date"] for call in run.records("calls"))


def test_calls_resume_from_the_state_and_read_again_only_the_lookback(
    api, config, tmp_path, catalog, resolved_manifest
):
    first = read(tmp_path, config, catalog, ["calls"], manifest=resolved_manifest)
    newest = max(call["start_date"] for call in api.data.calls)
    logged_late = parse_timestamp(newest) - datetime.timedelta(days=WINDOWS.lookback_days - 1)
    late = SampleFactory(seed=99).call(logged_late, api.data.users, api.data.dispositions)
    api.add_call(late)
    already = len(api.requests)

    second = read(
        tmp_path, config, catalog, ["calls"], per_stream_state(first), manifest=resolved_manifest
    )

    lookback_start = parse_timestamp(newest) - datetime.timedelta(days=WINDOWS.lookback_days)
    expected = {c["id"] for c in api.data.calls if c["start_date"] >= isoformat_z(lookback_start)}
    assert {call["id"] for call in second.records("calls")} == expected
    assert late["id"] in expected
    assert len(expected) < len(api.data.calls) / 5
    froms = {r.params["start_date_from"] for r in api.requests[already:]}
    assert min(froms) == isoformat_z(lookback_start - datetime.timedelta(seconds=1))


def test_a_read_killed_midway_resumes_from_its_last_state_without_losing_a_call(
    api, config, tmp_path, catalog, resolved_manifest
):
    configured = configured_catalog(catalog, ["calls"])
    command = manifest_command(
        "read", tmp_path, config, catalog=configured, manifest=resolved_manifest
    )
    lines, _ = read_until_killed(command, kill_after=len(api.data.calls) // 2)
    killed = airbyte_run.Run(validated("".join(lines[:-1])), "", "", -9)  # the last may be cut
    state = per_stream_state(killed)
    (bookmark,) = [entry["stream"]["stream_state"]["start_date"] for entry in state]
    assert len(killed.records("calls")) < len(api.data.calls), "killed before the end"
    assert bookmark > config["start_date"], "a checkpoint before the kill"

    resumed = read(tmp_path, config, catalog, ["calls"], state, manifest=resolved_manifest)

    assert resumed.returncode == 0, resumed.errors
    delivered = {call["id"] for call in killed.records("calls") + resumed.records("calls")}
    assert delivered == {call["id"] for call in api.data.calls}
    # Resumed from the state: nothing older than its bookmark less the lookback is read again.
    resumed_from = parse_timestamp(bookmark) - datetime.timedelta(days=WINDOWS.lookback_days)
    assert min(call["start_date"] for call in resumed.records("calls")) >= isoformat_z(resumed_from)


def test_a_429_and_a_503_are_retried_and_an_endpoint_answering_404_skipped(
    api, config, tmp_path, catalog, resolved_manifest
):
    api.fail_next("429", times=2, path="/users", retry_after="1")
    api.fail_next("404", times=None, path="/sequences")  # a plan without it
    api.fail_next("503", times=2, path="/mailboxes")  # its body holds `_errors`: retried too

    run = read(
        tmp_path, config, catalog, ["users", "sequences", "mailboxes"], manifest=resolved_manifest
    )

    assert run.returncode == 0, run.errors
    assert len(run.records("users")) == len(api.data.users)
    users = api.requests_to("/users")
    assert [r.status for r in users[:3]] == [429, 429, 200]
    assert users[1].at - users[0].at >= 0.9  # waited Retry-After: a lower bound, never late
    assert users[2].at - users[1].at >= 0.9
    assert run.records("sequences") == []
    # The CDK's IGNORE ends the stream as read whole: a limit docs/airbyte.md states.
    assert run.statuses()["sequences"][-1] == "COMPLETE"
    assert "404" in run.logs + run.stderr
    assert len(run.records("mailboxes")) == len(api.data.mailboxes)
    assert [r.status for r in api.requests_to("/mailboxes")][:3] == [503, 503, 200]
