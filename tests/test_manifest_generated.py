"""manifest/manifest.yaml is what scripts/generate_manifest.py makes of the tap's declarations
(tests_manifest/ runs it with airbyte-cdk)."""

from __future__ import annotations

import inspect
import json

import yaml

from scripts import generate_manifest
from tap_amplemarket.conform import EXTRA
from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import STREAM_TYPES, TapAmplemarket


def test_the_committed_manifest_is_the_generated_one():
    committed = generate_manifest.MANIFEST.read_text()
    assert committed == generate_manifest.render(), "run `make manifest`"


def test_the_manifest_declares_each_stream_as_the_tap_does():
    manifest = yaml.safe_load(generate_manifest.render())
    streams = manifest["definitions"]["streams"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in manifest["streams"]] == [
        stream_type.name for stream_type in STREAM_TYPES
    ]
    for stream_type in STREAM_TYPES:
        declared = streams[stream_type.name]
        retriever = declared["retriever"]
        assert declared["primary_key"] == list(stream_type.primary_keys)
        assert retriever["record_selector"]["extractor"]["field_path"] == [
            stream_type.records_key or stream_type.name
        ]
        properties = declared["schema_loader"]["schema"]["properties"]
        assert EXTRA not in properties
        # The tap's schema for the stream (its StreamSchema descriptor's source), `_extra` added.
        source = inspect.getattr_static(stream_type, "schema").schema_source
        assert {*properties, EXTRA} == set(source.get_schema(stream_type.name)["properties"])
    assert (
        streams["tasks"]["retriever"]["partition_router"]["parent_stream_configs"][0][
            "request_option"
        ]["field_name"]
        == "user_id"
    )
    entries = streams["lead_list_entries"]["retriever"]
    assert entries["requester"]["url"] == generate_manifest.api_url() + (
        "/lead-lists/{{ stream_partition.lead_list_id | urlencode | replace('/', '%2F') }}"
    )
    assert all(  # the form the Builder keeps: its migration would mangle url_base + path
        {"url_base", "path"}.isdisjoint(stream["retriever"]["requester"])
        for stream in streams.values()
    )


def test_calls_windows_are_the_taps():
    windows = CallsStream.date_windows
    assert windows is not None
    defaults = TapAmplemarket.config_jsonschema["properties"]
    assert windows.first_window_days == defaults["window_days"]["default"]
    assert windows.lookback_days == defaults["lookback_window_days"]["default"]
    cursor = yaml.safe_load(generate_manifest.render())["definitions"]["streams"]["calls"][
        "incremental_sync"
    ]
    assert cursor["cursor_field"] == CallsStream.replication_key
    assert cursor["step"] == f"P{windows.first_window_days}D"
    assert cursor["lookback_window"] == f"P{windows.lookback_days}D"
    params = json.dumps(
        yaml.safe_load(generate_manifest.render())["definitions"]["streams"]["calls"]["retriever"]
    )
    assert windows.from_param in params
    assert windows.to_param in params


def test_the_manifest_is_for_the_locked_cdk():
    """The CDK version the manifest declares is the one manifest/uv.lock installs."""
    lock = (generate_manifest.CDK_PROJECT.parent / "uv.lock").read_text()
    version = yaml.safe_load(generate_manifest.render())["version"]
    assert f'name = "airbyte-cdk"\nversion = "{version}"\n' in lock


def test_the_manifest_asks_for_the_taps_settings_that_mean_the_same():
    spec = yaml.safe_load(generate_manifest.render())["spec"]["connection_specification"]
    settings = TapAmplemarket.config_jsonschema["properties"]
    assert list(spec["properties"]) == list(generate_manifest.SETTINGS)
    for name, declared in spec["properties"].items():
        if name not in generate_manifest.MANIFEST_DESCRIPTIONS:
            assert declared["description"] == settings[name]["description"]
        else:  # what differs in the manifest, said there
            assert declared["description"] != settings[name]["description"]
        assert declared.get("default") == settings[name].get("default")
    assert spec["required"] == ["api_key"]
    assert [n for n, d in spec["properties"].items() if d.get("airbyte_secret")] == ["api_key"]
