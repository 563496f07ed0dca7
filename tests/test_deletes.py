"""Deletions: ACTIVATE_VERSION after each full-table stream read whole, and never otherwise.

A target that supports the message marks deleted (or removes) the rows of a stream that the
run did not see: it must come after the stream's last record, and only from a run that read
every record of it. tests/test_pipelines.py shows what PostgreSQL makes of it.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import EMIT_ACTIVATE_VERSION, STREAM_TYPES, TapAmplemarket
from tests.conftest import API_KEY, SyncResult, config_for, run_cli, sync
from tests.fake_api import FakeAmplemarketAPI, sample_dataset

FULL_TABLE = sorted(stream.name for stream in STREAM_TYPES if stream is not CallsStream)


def delete(api: FakeAmplemarketAPI, stream: str, **match: t.Any) -> list[dict[str, t.Any]]:
    """Delete from the fake API every record of `stream` whose fields are `match`, as
    Amplemarket does between two runs; returns them. (The one place that knows where the
    dataset keeps a stream's records: lead list entries live in their lists' `leads`.)"""
    if stream == "lead_list_entries":
        lists = [lead_list["leads"] for lead_list in api.data.lead_lists]
    else:
        lists = [api.data[stream]]
    deleted = []
    for records in lists:
        gone = [r for r in records if all(r.get(k) == v for k, v in match.items())]
        records[:] = [r for r in records if r not in gone]
        deleted += gone
    assert deleted, f"no {stream} record has {match}"
    return deleted


def activated(result: SyncResult) -> dict[str, int]:
    """Stream -> version of each ACTIVATE_VERSION, checking there is one per stream at most."""
    messages = [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    versions = {m["stream"]: m["version"] for m in messages}
    assert len(versions) == len(messages), "a stream activated twice"
    return versions


@pytest.fixture
def api() -> t.Iterator[FakeAmplemarketAPI]:
    with FakeAmplemarketAPI(sample_dataset(60, users=4), api_key=API_KEY) as server:
        yield server


@pytest.fixture
def config(api: FakeAmplemarketAPI) -> dict[str, t.Any]:
    return config_for(api, page_size=5)  # several pages per stream, a page per user's tasks


def test_each_full_table_stream_activates_its_version_after_its_last_record(config):
    result = sync(config)

    versions = activated(result)
    assert sorted(versions) == FULL_TABLE, "every full-table stream, by default; never calls"
    position = {id(m): i for i, m in enumerate(result.messages)}
    for stream, version in versions.items():
        (activation,) = [
            m for m in result.messages if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
        ]
        records = [m for m in result.messages if m["type"] == "RECORD" and m["stream"] == stream]
        assert records, stream
        assert position[id(activation)] > max(position[id(m)] for m in records), stream
        assert {m.get("version") for m in records} == {version}, "the version the rows carry"
    calls = [m for m in result.messages if m["type"] == "RECORD" and m["stream"] == "calls"]
    assert calls
    assert all(m.get("version") is None for m in calls)


def test_the_sdk_setting_turns_it_off(config):
    result = sync({**config, EMIT_ACTIVATE_VERSION: False})

    assert activated(result) == {}
    assert result.records("users")


def test_the_setting_is_on_by_default_among_the_taps_settings():
    setting = TapAmplemarket.settings_jsonschema()["properties"][EMIT_ACTIVATE_VERSION]

    assert setting["default"] is True
    assert "boolean" in setting["type"]


def test_calls_forced_to_full_table_by_a_catalog_never_activate(config, tmp_path):
    catalog = TapAmplemarket(config=config).catalog_dict
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "calls":
            entry["replication_method"] = "FULL_TABLE"
            for metadata in entry["metadata"]:
                if metadata["breadcrumb"] == []:
                    metadata["metadata"]["forced-replication-method"] = "FULL_TABLE"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    result = run_cli(["--catalog", str(tmp_path / "catalog.json")], config, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.records("calls")
    assert "calls" not in activated(result)
    assert "users" in activated(result)


def test_a_stream_the_plan_lacks_activates_nothing(api, config):
    api.fail_next("404", times=None, path="/sequences")

    result = sync(config)

    assert "sequences" not in activated(result)
    assert sorted(activated(result)) == [name for name in FULL_TABLE if name != "sequences"]


@pytest.mark.parametrize(
    ("path", "stream", "unactivated"),
    [("/sequences", "sequences", {"sequences"}), ("/tasks", "tasks", {"users", "tasks"})],
)
def test_a_stream_that_fails_part_way_activates_nothing(
    api, config, tmp_path, path, stream, unactivated
):
    api.fail_next("503", times=None, path=path, after=1)  # its second page never comes

    result = run_cli([], {**config, "max_retries": 1}, tmp_path)

    assert result.returncode == 1
    assert result.records(stream), "a page was read"
    assert not unactivated & set(activated(result))


@pytest.mark.parametrize(
    ("path", "stopped"),
    [("/sequences", ["sequences"]), ("/lead-lists", ["lead_lists", "lead_list_entries"])],
)
def test_paging_stopped_at_a_link_going_nowhere_activates_nothing(
    api, config, tmp_path, path, stopped
):
    api.fail_next("link", path=path, after=1, href="{first}")  # page 2 links back to page 1

    result = run_cli([], config, tmp_path)

    # A link going nowhere ends the run (the rest may be unread): nothing of it activated,
    # a child neither (its parents may not all be listed).
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.records(stopped[0])
    assert not set(stopped) & set(activated(result)), "the rest of it may be unread"


def test_a_dry_run_stopped_at_one_record_activates_nothing(config, tmp_path):
    result = run_cli(["--test"], config, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.records("users")
    assert activated(result) == {}


@pytest.mark.parametrize(
    ("parent", "child", "key"),
    [("users", "tasks", "user_id"), ("lead_lists", "lead_list_entries", "lead_list_id")],
)
def test_a_parent_deleted_since_listed_holds_its_childrens_deletions_for_a_run(
    api, config, parent, child, key
):
    config = {**config, "page_size": 100}  # a page per parent: the second /tasks is users[1]
    gone = api.data[parent][1]["id"]
    path = "/tasks" if child == "tasks" else f"/lead-lists/{gone}"
    api.fail_next("404", path=path, after=1 if child == "tasks" else 0)

    during = sync(config)  # the parent is listed, then answers 404 for its children

    assert gone not in {r[key] for r in during.records(child)}
    assert parent in activated(during)
    assert child not in activated(during), "its children were not read: none is dropped"

    delete(api, parent, id=gone)
    after = sync(config)  # no longer listed: its children's rows are dropped with it

    assert child in activated(after)
    assert gone not in {r[key] for r in after.records(child)}
    assert {r[key] for r in after.records(child)} == {p["id"] for p in api.data[parent]}


def test_a_child_endpoint_that_answered_for_no_parent_activates_nothing(api, config):
    del api.data.users[2:]  # two users: too few 404s to call /tasks missing from the plan
    api.fail_next("404", times=None, path="/tasks")

    result = sync(config)

    assert result.records("users")
    assert result.records("tasks") == []
    assert "tasks" not in activated(result)


def test_a_child_whose_every_parent_is_deleted_still_activates_its_version(api, config):
    sync(config)
    for lead_list in list(api.data.lead_lists):
        delete(api, "lead_lists", id=lead_list["id"])

    result = sync(config)

    assert result.records("lead_list_entries") == []
    schemas = [m for m in result.messages if m["type"] == "SCHEMA"]
    assert "lead_list_entries" in {m["stream"] for m in schemas}, "a target knows the table"
    assert {"lead_lists", "lead_list_entries"} <= set(activated(result))


def test_records_deleted_between_runs_are_absent_from_the_next_activated_version(api, config):
    sync(config)
    (domain,) = delete(api, "excluded_domains", domain=api.data.excluded_domains[4]["domain"])
    lead_list = api.data.lead_lists[0]
    (entry,) = delete(api, "lead_list_entries", id=lead_list["leads"][3]["id"])

    result = sync(config)

    assert {"excluded_domains", "lead_list_entries"} <= set(activated(result))
    assert domain["domain"] not in result.ids("excluded_domains", key="domain")
    assert entry["id"] not in result.ids("lead_list_entries")
    assert len(result.records("lead_list_entries")) == sum(
        len(ll["leads"]) for ll in api.data.lead_lists
    )
