"""Every list endpoint as a stream: discovery, multi-page full syncs, children, 404 skips."""

from __future__ import annotations

import json
import re

import pytest

from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import STREAM_TYPES
from tests.conftest import API_KEY, config_for, run_cli, sync
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS

#: What discovery must say: each stream class's primary key.
EXPECTED_KEYS = {stream.name: list(stream.primary_keys) for stream in STREAM_TYPES}
#: Top-level streams paged like any list, by path (calls has tests of its own).
FLAT_STREAMS = {
    endpoint.stream: endpoint.path
    for endpoint in ENDPOINTS
    if endpoint.parent is None and endpoint.paged and endpoint.stream != CallsStream.name
}


@pytest.fixture
def big_api():
    data = sample_dataset(150, users=25)  # 25 mailboxes: two pages even at the 20 maximum
    with FakeAmplemarketAPI(data, api_key=API_KEY) as server:
        yield server


@pytest.fixture
def small_pages(big_api):
    return config_for(big_api, page_size=5)


def test_discover_lists_every_stream_with_its_primary_key(small_pages, tmp_path):
    result = run_cli(["--discover"], small_pages, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    catalog = json.loads(result.stdout)
    keys = {s["tap_stream_id"]: s["key_properties"] for s in catalog["streams"]}
    assert keys == EXPECTED_KEYS
    calls = next(s for s in catalog["streams"] if s["tap_stream_id"] == "calls")
    assert calls["replication_key"] == "start_date"
    assert calls["replication_method"] == "INCREMENTAL"


def test_full_sync_delivers_every_record_of_every_stream_across_pages(big_api, small_pages):
    result = sync(small_pages)
    data = big_api.data

    for stream, path in FLAT_STREAMS.items():
        key = EXPECTED_KEYS[stream][0]
        expected = [record[key] for record in data[stream]]
        assert result.ids(stream, key) == expected, stream
        assert len(big_api.requests_to(path)) >= 2, f"{stream} should span several pages"
    assert sorted(result.ids("calls")) == sorted(c["id"] for c in data.calls)
    assert sorted(result.ids("tasks")) == sorted(task["id"] for task in data.tasks)
    entries = {(r["lead_list_id"], r["id"]) for r in result.records("lead_list_entries")}
    assert entries == {(ll["id"], lead["id"]) for ll in data.lead_lists for lead in ll["leads"]}
    assert len(result.records("lead_list_entries")) == len(entries), "no entry twice"


def test_tasks_are_read_per_user_because_the_api_requires_user_id(big_api, small_pages):
    result = sync(small_pages)

    task_requests = big_api.requests_to("/tasks")
    assert all("user_id" in r.params for r in task_requests)
    assert {r.params["user_id"] for r in task_requests} == {u["id"] for u in big_api.data.users}
    assert all(r.status == 200 for r in task_requests)
    assert all(task["user_id"] for task in result.records("tasks"))
    assert result.last_state["bookmarks"]["tasks"] == {}, "no per-user state for a full table"


def test_mailboxes_page_size_is_clamped_to_twenty(big_api, small_pages):
    result = sync({**small_pages, "page_size": 100})

    sizes = {r.params["page[size]"] for r in big_api.requests_to("/mailboxes")}
    assert sizes == {"20"}
    assert len(result.records("mailboxes")) == len(big_api.data.mailboxes) == 25
    assert {r.params["page[size]"] for r in big_api.requests_to("/users")} == {"100"}


def test_an_endpoint_missing_from_the_plan_is_skipped_with_one_warning(
    big_api, small_pages, tmp_path
):
    big_api.fail_next("404", times=None, path="/accounts")
    big_api.fail_next("404", times=None, path="/tasks")

    result = run_cli([], small_pages, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.records("accounts") == []
    assert len(result.records("sequences")) == len(big_api.data.sequences)
    assert result.stderr.count("Skipping stream accounts") == 1
    assert result.stderr.count("Skipping stream tasks") == 1
    # Tried for three parents: a 404 for fewer may be parents deleted since they were listed.
    assert len(big_api.requests_to("/tasks")) == 3
    assert "this key's plan may not include it" in result.stderr


def test_connection_test_reads_one_record_of_each_stream(big_api, small_pages, tmp_path):
    # The SDK's dry run: what `meltano config tap-amplemarket test` looks for.
    result = run_cli(["--test"], small_pages, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    for stream in ("calls", "users", "sequences", "accounts"):
        assert len(result.records(stream)) == 1, stream
    assert len(big_api.requests_to("/sequences")) == 1, "one page, not the whole stream"


def test_connection_test_with_a_bad_key_fails_clearly(big_api, small_pages, tmp_path):
    result = run_cli(["--test"], {**small_pages, "api_key": "nope"}, tmp_path)

    assert result.returncode != 0
    assert "Amplemarket rejected the API key (401): check api_key" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_lead_list_deleted_after_listing_skips_only_that_list(big_api, small_pages):
    gone = big_api.data.lead_lists[3]["id"]
    big_api.fail_next("404", times=None, path=f"/lead-lists/{gone}")

    result = sync(small_pages)

    lists = {r["lead_list_id"] for r in result.records("lead_list_entries")}
    assert lists == {ll["id"] for ll in big_api.data.lead_lists} - {gone}
    assert len(result.records("lead_lists")) == len(big_api.data.lead_lists)


def test_a_parent_id_is_escaped_whole_in_its_childs_path(big_api, small_pages):
    odd = big_api.data.lead_lists[2]
    odd["id"] = "../users?x=1#frag%2F"

    result = sync(small_pages)

    sent = [r.target for r in big_api.requests if "x=1" in r.target or "%3F" in r.target]
    assert sent, "the odd id was requested"
    assert all(r.startswith("/lead-lists/..%2Fusers%3Fx%3D1%23frag%252F?") for r in sent), sent
    assert {e["lead_list_id"] for e in result.records("lead_list_entries")} >= {odd["id"]}


def test_a_user_deleted_after_listing_skips_only_their_tasks(big_api, small_pages, tmp_path):
    users = big_api.data.users
    big_api.fail_next("404", times=None, path="/tasks", after=3)  # from the fourth user on

    result = run_cli([], {**small_pages, "page_size": 100}, tmp_path)  # a page per user

    assert result.returncode == 0, result.stderr[-2000:]
    assert "Skipping stream tasks" not in result.stderr
    assert {t["user_id"] for t in result.records("tasks")} == {u["id"] for u in users[:3]}
    assert len(big_api.requests_to("/tasks")) == len(users), "each user asked once, in turn"


@pytest.mark.parametrize("args", [[], ["--test"]])
def test_an_api_url_that_is_not_the_apis_fails_instead_of_skipping_every_stream(
    big_api, small_pages, tmp_path, args
):
    result = run_cli(args, {**small_pages, "api_url": big_api.url + "/v9"}, tmp_path)

    assert result.returncode == 1
    assert re.search(
        r"Amplemarket answered 404 for /[a-z/-]+ and /[a-z/-]+, and nothing else yet: "
        r"api_url is not the API's base URL \(check api_url\), or deselect the streams the "
        r"key's plan lacks$",
        result.stderr.strip().splitlines()[-1],
    )
    assert result.stderr.count("Skipping stream") == 1
    assert "(or api_url is wrong, if other streams say so)" in result.stderr
    assert len(big_api.requests) == 2, "no request after the second 404"


def test_the_first_user_deleted_after_listing_skips_only_their_tasks(big_api, small_pages):
    big_api.fail_next("404", times=1, path="/tasks")  # the first user asked for: gone

    result = sync({**small_pages, "page_size": 100})

    first = big_api.requests_to("/tasks")[0].params["user_id"]
    users = {u["id"] for u in big_api.data.users}
    assert {t["user_id"] for t in result.records("tasks")} == users - {first}
    assert len(result.records("tasks")) == sum(t["user_id"] != first for t in big_api.data.tasks)
