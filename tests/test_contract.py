"""The tap against the API as documented: the fake's own table and data (tests/fake_api, written
from api-facts.md) checked against the tap's streams and schemas, page sizes the endpoints
refuse, and responses the tap cannot read."""

from __future__ import annotations

import json
import pathlib

import pytest

from tap_amplemarket.schemas import FIELD_SOURCE
from tap_amplemarket.tap import STREAM_TYPES
from tests.conftest import API_KEY, config_for, run_cli, sync
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "tap_amplemarket" / "schemas"


def tap_table() -> list[tuple[object, ...]]:
    rows = []
    for stream in STREAM_TYPES:
        parent = stream.parent_stream_type
        rows.append(
            (
                stream.name,
                stream.path,
                stream.records_key or stream.name,
                tuple(stream.primary_keys),
                parent.name if parent else None,
                parent.child_context_key if parent else None,  # type: ignore[attr-defined]
            )
        )
    return rows


def test_the_taps_streams_are_the_documented_endpoints():
    fake = [
        (e.stream, e.path, e.records_key, e.primary_keys, e.parent, e.parent_key) for e in ENDPOINTS
    ]
    assert sorted(tap_table(), key=str) == sorted(fake, key=str)


def test_each_stream_pages_by_its_last_key_and_sends_no_size_where_none_is_taken():
    by_name = {stream.name: stream for stream in STREAM_TYPES}
    for endpoint in ENDPOINTS:
        stream = by_name[endpoint.stream]
        assert (stream.max_page_size is None) == (not endpoint.paged), endpoint.stream
        if endpoint.paged:
            assert endpoint.cursor == stream.primary_keys[-1], endpoint.stream
        if endpoint.max_page_size is not None:  # documented: the tap never asks for more
            assert stream.max_page_size is not None
            assert stream.max_page_size <= endpoint.max_page_size, endpoint.stream


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.stem)
def test_every_field_says_where_it_comes_from(path):
    properties = json.loads(path.read_text())["properties"]
    for name, prop in properties.items():
        source = prop.get(FIELD_SOURCE, "")
        assert source in {"doc", "example", "PostHog"} or (
            source.startswith("undocumented: ") and len(source) > 30
        ), f"{path.stem}.{name}: {source!r}"


@pytest.fixture
def documented_api():
    with FakeAmplemarketAPI(sample_dataset(60), api_key=API_KEY) as api:
        yield api


def test_every_documented_field_lands_in_a_column_of_its_type(documented_api):
    result = sync(config_for(documented_api))  # sync() checks each record against its SCHEMA

    for stream in {stream.name for stream in STREAM_TYPES}:
        records = result.records(stream)
        assert records, stream
        assert all(record.get("_extra") is None for record in records), stream
    tasks = result.records("tasks")
    assert len(tasks) == len(documented_api.dataset.tasks)
    assert all(task["due_on"] is not None for task in tasks), "a date-time, as documented"
    assert any(task["finished_on"] for task in tasks)
    entries = result.records("lead_list_entries")
    assert any(entry["person_id"] for entry in entries)
    assert all(isinstance(lead_list["options"], dict) for lead_list in result.records("lead_lists"))
    accept = documented_api.requests[0].headers["Accept"]
    assert accept.split(",")[0].strip() == "application/vnd.amp+json"
    assert "application/json" in accept


# -- page sizes ------------------------------------------------------------------------------

#: Each endpoint caps the page differently; /sequences takes no page[size] at all.
CAPS = {
    "/calls": 50,
    "/users": 7,
    "/sequences": 0,
    "/lead-lists": 4,
    "/lead-lists/{lead_list_id}": 3,
    "/excluded-domains": 10,
    "/excluded-emails": 0,
    "/accounts": 30,
    "/tasks": 2,
}


def test_a_page_size_an_endpoint_refuses_never_breaks_the_sync(tmp_path):
    data = sample_dataset(400, users=9)
    with FakeAmplemarketAPI(data, api_key=API_KEY, max_page_sizes=CAPS) as api:
        result = run_cli([], config_for(api, page_size=100), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    for endpoint in ENDPOINTS:
        key = endpoint.primary_keys[-1]
        if endpoint.detail:
            expected = [r[key] for p in data[endpoint.parent] for r in p[endpoint.records_key]]
        else:
            expected = [record[key] for record in data[endpoint.stream]]
        got = result.ids(endpoint.stream, key)
        assert sorted(got) == sorted(expected), endpoint.stream  # each once, none missing
    warnings = [line for line in result.stderr.splitlines() if "refused page[size]" in line]
    refusing = {path for path, cap in CAPS.items() if cap < 100}
    assert len(warnings) == len(refusing), "\n".join(warnings)
    for path, cap in CAPS.items():
        (line,) = [w for w in warnings if f"GET {path} refused" in w]
        assert line.endswith("no page[size] (the API's own page)" if cap == 0 else f"={cap}")
        served = [r for r in api.requests_to_endpoint(path) if r.status == 200]
        sizes = {r.params.get("page[size]") for r in served}
        assert sizes == ({None} if cap == 0 else {str(cap)}), path


def test_a_refusal_that_names_no_size_falls_back_to_the_documented_default(tmp_path):
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY) as api:
        api.fail_next("400-page-size", times=1, path="/users")
        result = run_cli([], config_for(api, page_size=100), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert [r.params.get("page[size]") for r in api.requests_to("/users")] == ["100", "20"]
    assert sorted(result.ids("users")) == sorted(u["id"] for u in api.dataset.users)


# -- what the tap cannot read ends the run ---------------------------------------------------


def assert_stopped(result, *words):
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert all(word in last for word in words), last
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("records", [None, False, {}, "calls", {"id": "x"}])
def test_a_records_value_that_is_not_a_list_stops_the_run(documented_api, tmp_path, records):
    documented_api.fail_next("records-as", times=None, path="/users", value=records)

    result = run_cli([], config_for(documented_api, max_retries=1), tmp_path)

    assert_stopped(result, "/users", "'users'")
    assert result.records("users") == []


def test_errors_beside_a_records_list_stop_the_run(documented_api, tmp_path):
    documented_api.fail_next("errors-in-page", times=None, path="/calls", after=2)

    result = run_cli(
        [],
        config_for(documented_api, max_retries=1, page_size=5, max_concurrent_requests=1),
        tmp_path,
    )

    assert_stopped(result, "/calls", "_errors")
    assert result.last_state is not None, "the checkpoints before it are kept"


@pytest.mark.parametrize(
    "next_link",
    ["{next}", ["{next}"], [{"href": "{next}"}], {"url": "{next}"}, {"href": None}, {"href": 5}],
    ids=["string", "list", "list-of-links", "url", "href-null", "href-number"],
)
def test_a_next_link_the_tap_cannot_read_stops_the_run(documented_api, tmp_path, next_link):
    documented_api.fail_next("next-as", path="/calls", after=1, value=next_link)

    config = config_for(documented_api, page_size=5, max_concurrent_requests=1)
    result = run_cli([], config, tmp_path)

    assert_stopped(result, "next link the tap cannot read")
    assert result.last_state is not None


def test_a_next_link_of_null_is_the_last_page(documented_api):
    documented_api.fail_next("next-as", path="/users", value=None)

    result = sync(config_for(documented_api, page_size=1))

    assert len(result.records("users")) == 1


@pytest.mark.parametrize("prefix", ["", "/amplemarket"])
@pytest.mark.parametrize("href", ["{query}", "users{query}", "./users{query}"])
def test_relative_next_links_resolve_against_the_page_they_came_from(prefix, href):
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY, path_prefix=prefix) as api:
        api.fail_next("link", times=None, path="/users", href=href)
        result = sync({**config_for(api, page_size=1), "api_url": api.url + prefix})

    assert sorted(result.ids("users")) == sorted(u["id"] for u in api.dataset.users)
    assert {r.target.split("?")[0] for r in api.requests_to("/users")} == {f"{prefix}/users"}


def test_pages_with_nothing_new_stop_a_full_table_stream(documented_api, tmp_path):
    # Every page from the second on is "the first page again", under a new URL each time.
    for n in range(50):
        documented_api.fail_next(
            "link", path="/sequences", after=1 if n == 0 else 0, href=f"{{first}}&n={n}"
        )

    result = run_cli([], config_for(documented_api, page_size=5), tmp_path)

    assert_stopped(result, "sequences", "nothing new")
    assert len(documented_api.requests_to("/sequences")) == 2 + 6


def test_a_listing_past_max_pages_per_partition_stops_the_run(documented_api, tmp_path):
    config = config_for(documented_api, page_size=5, max_pages_per_partition=3)

    result = run_cli([], config, tmp_path)

    assert_stopped(result, "max_pages_per_partition")
    assert max(len(documented_api.requests_to(p)) for p in ("/calls", "/sequences")) <= 3
