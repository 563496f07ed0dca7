"""The fake API itself: endpoints read off the stream classes, records made from schemas,
one way to inject faults, and what it is set up with (budget, path prefix)."""

from __future__ import annotations

import json

import pytest
import requests

from tap_amplemarket.tap import STREAM_TYPES
from tests.conftest import API_KEY, config_for, record_validator, sync
from tests.fake_api import Dataset, FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS
from tests.fake_api.generate import fill_missing

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_one_endpoint_per_stream_class_and_sample_data_only_for_streams():
    endpoints = {endpoint.stream: endpoint for endpoint in ENDPOINTS}
    assert list(endpoints) == [stream.name for stream in STREAM_TYPES]
    assert set(sample_dataset()) <= set(endpoints), "sample data for a stream that is not"
    entries, tasks = endpoints["lead_list_entries"], endpoints["tasks"]
    assert entries.detail
    assert (entries.path, entries.records_key, entries.parent) == (
        "/lead-lists/{lead_list_id}",
        "leads",
        "lead_lists",
    )
    assert entries.match("/lead-lists/abc") == {"lead_list_id": "abc"}
    assert (tasks.detail, tasks.required_filters) == (False, ("user_id",))
    assert endpoints["mailboxes"].max_page_size == 20
    assert endpoints["excluded_domains"].cursor_field == "domain"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.stream)
def test_records_made_from_a_schema_fit_it(endpoint):
    data = Dataset()
    fill_missing(data, ENDPOINTS)

    if endpoint.detail:
        parents = data[endpoint.parent]
        records = [record for parent in parents for record in parent[endpoint.records_key]]
    else:
        records = data[endpoint.stream]
    # A parent carries its detail endpoint's records (lead_lists their `leads`), as the API does.
    nested = {e.records_key for e in ENDPOINTS if e.detail and e.parent == endpoint.stream}
    records = [{k: v for k, v in record.items() if k not in nested} for record in records]
    validator = record_validator(json.dumps(endpoint.schema, sort_keys=True))
    for record in records:
        errors = [error.message for error in validator.iter_errors(record)]
        assert errors == [], record
    keys = [tuple(record[key] for key in endpoint.primary_keys) for record in records]
    assert len(records) >= 12
    assert len(set(keys)) == len(keys), "primary keys are unique"
    if endpoint.parent_key:  # each child carries its parent's id: tasks' user_id, ...
        parent_ids = {parent["id"] for parent in data[endpoint.parent]}
        assert {record[endpoint.parent_key] for record in records} == parent_ids


def test_streams_without_sample_data_are_synced_from_records_made_from_their_schemas():
    with FakeAmplemarketAPI(Dataset(), api_key=API_KEY) as api:
        # Made-up dates fall in 2026's first half; sync() validates every record.
        result = sync(config_for(api, start_date="2025-12-01T00:00:00Z", page_size=5))

    counts = result.counts()
    assert counts["accounts"] == len(api.data.accounts) == 12
    assert counts["tasks"] == len(api.data.tasks) == 3 * len(api.data.users)
    assert counts["lead_list_entries"] == sum(len(ll["leads"]) for ll in api.data.lead_lists)
    assert set(counts) == {stream.name for stream in STREAM_TYPES}
    assert len(api.requests_to("/accounts")) == 3, "12 records in pages of 5"


@pytest.fixture
def tiny_api():
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY) as server:
        yield server


def get(api, path, **params):
    return requests.get(f"{api.url}{path}", params=params, headers=AUTH, timeout=10)


def test_a_fault_with_no_count_answers_every_request_to_its_path(tiny_api):
    tiny_api.fail_next("404", times=None, path="/accounts")

    assert [get(tiny_api, "/accounts").status_code for _ in range(3)] == [404] * 3
    assert get(tiny_api, "/users").status_code == 200


def test_a_request_is_logged_with_its_status_before_its_body_is_sent(tiny_api):
    """A test reading the log as soon as the tap has a status must find that status."""
    tiny_api.fail_next("drip", path="/users")  # a body sent a byte at a time, for seconds

    with requests.get(f"{tiny_api.url}/users", headers=AUTH, timeout=10, stream=True) as answer:
        assert answer.status_code == 200
        assert [r.status for r in tiny_api.requests_to("/users")] == [200]


def test_faults_fire_after_the_requests_let_through_and_in_the_order_added(tiny_api):
    tiny_api.fail_next("503", times=2, path="/users", after=1)
    tiny_api.fail_next("429", path="/users", retry_after="7")

    responses = [get(tiny_api, "/users") for _ in range(5)]

    assert [r.status_code for r in responses] == [200, 503, 503, 429, 200]
    assert responses[3].headers["Retry-After"] == "7"


def test_a_per_url_fault_refuses_each_distinct_url_its_count_of_times(tiny_api):
    tiny_api.fail_next("429", times=2, per_url=True, retry_after="0")

    statuses = [get(tiny_api, path).status_code for path in ["/users"] * 3 + ["/accounts"] * 3]

    assert statuses == [429, 429, 200] * 2


@pytest.mark.parametrize(
    "arguments",
    [{"kind": "418"}, {"kind": "503", "times": 0}, {"kind": "429", "per_url": True, "after": 1}],
)
def test_an_unknown_or_contradictory_fault_is_refused(tiny_api, arguments):
    with pytest.raises(ValueError, match=r"unknown fault kind|times must be"):
        tiny_api.fail_next(**arguments)


def test_the_request_budget_and_the_path_prefix_are_set_when_the_fake_is_made():
    with FakeAmplemarketAPI(
        sample_dataset(5), api_key=API_KEY, request_budget=2, path_prefix="/proxy"
    ) as api:
        statuses = [get(api, "/proxy/users").status_code for _ in range(3)]
        outside = get(api, "/users")

    assert statuses == [200, 200, 400]
    assert outside.status_code == 404
    assert [r.path for r in api.requests] == ["/users"] * 4
    assert [r.target for r in api.requests] == ["/proxy/users"] * 3 + ["/users"]


def test_a_call_logged_with_post_is_listed(tiny_api):
    call = {**tiny_api.data.calls[0], "id": "logged-late", "start_date": "2026-05-31T23:00:00Z"}

    posted = requests.post(f"{tiny_api.url}/calls", json=call, headers=AUTH, timeout=10)

    assert posted.status_code == 201
    assert get(tiny_api, "/calls", **{"page[size]": "1"}).json()["calls"] == [call]
    refused = requests.post(f"{tiny_api.url}/calls", json=call, timeout=10)
    assert refused.status_code == 401
