"""The fake API itself: its own table of endpoints, written from the docs, data that fits the
tap's schemas, one way to inject faults, and what it is set up with (budget, path prefix,
page size maxima)."""

from __future__ import annotations

import inspect
import json
import pathlib
import subprocess
import sys

import pytest
import requests

from tap_amplemarket.tap import STREAM_TYPES
from tests.conftest import API_KEY, config_for, record_validator, sync
from tests.fake_api import Dataset, FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS
from tests.fake_api.generate import fill_missing

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_its_own_table_of_endpoints_and_sample_data_only_for_them():
    endpoints = {endpoint.stream: endpoint for endpoint in ENDPOINTS}
    assert set(sample_dataset()) <= set(endpoints), "sample data for no endpoint"
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
    assert endpoints["excluded_domains"].cursor == "domain"


def test_it_imports_nothing_from_the_tap():
    root = pathlib.Path(__file__).resolve().parent.parent
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, tests.fake_api.server; print(sorted(sys.modules))"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "tap_amplemarket" not in imported
    assert "'tests.fake_api.server'" in imported


def test_it_answers_in_the_documented_media_type_with_the_default_page(tiny_api):
    answer = get(tiny_api, "/sequences")  # 45 of them

    assert answer.headers["Content-Type"] == "application/vnd.amp+json"
    assert len(answer.json()["sequences"]) == 20
    assert "page[size]" not in answer.json()["_links"]["next"]["href"]
    missing = get(tiny_api, "/tasks")
    assert missing.status_code == 400
    assert missing.json() == {
        "_errors": [
            {
                "code": "missing_field",
                "title": "Missing Field",
                "detail": "user_id is required",
                "source": {"parameter": "user_id"},
            }
        ],
        "object": "error",
    }


def test_a_maximum_page_size_is_set_per_endpoint_and_0_refuses_any():
    caps = {"/users": 2, "/sequences": 0}
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY, max_page_sizes=caps) as api:
        statuses = {
            (path, size): get(api, path, **({"page[size]": size} if size else {})).status_code
            for path in ("/users", "/sequences", "/mailboxes")
            for size in ("2", "3", "21", None)
        }
        api.max_page_sizes["/users"] = 3
        later = get(api, "/users", **{"page[size]": "3"}).status_code

    assert statuses == {
        ("/users", "2"): 200,
        ("/users", "3"): 400,
        ("/users", "21"): 400,
        ("/users", None): 200,
        ("/sequences", "2"): 400,
        ("/sequences", "3"): 400,
        ("/sequences", "21"): 400,
        ("/sequences", None): 200,
        ("/mailboxes", "2"): 200,
        ("/mailboxes", "3"): 200,
        ("/mailboxes", "21"): 400,  # documented: max 20
        ("/mailboxes", None): 200,
    }
    assert later == 200
    with pytest.raises(ValueError, match="names no endpoint"):
        FakeAmplemarketAPI(sample_dataset(5), max_page_sizes={"/nowhere": 1})


def test_a_record_removed_from_the_dataset_is_no_longer_served(tiny_api):
    first = get(tiny_api, "/calls").json()["calls"][0]
    user = tiny_api.dataset.users[0]
    lead = tiny_api.dataset.lead_lists[0]["leads"][0]

    tiny_api.dataset.calls.remove(next(c for c in tiny_api.dataset.calls if c["id"] == first["id"]))
    tiny_api.dataset.users.remove(user)
    tiny_api.dataset.lead_lists[0]["leads"].remove(lead)

    assert first["id"] not in [c["id"] for c in get(tiny_api, "/calls").json()["calls"]]
    assert user["id"] not in [u["id"] for u in get(tiny_api, "/users").json()["users"]]
    list_id = tiny_api.dataset.lead_lists[0]["id"]
    leads = get(tiny_api, f"/lead-lists/{list_id}").json()["leads"]
    assert lead["id"] not in [entry["id"] for entry in leads]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.stream)
def test_the_fakes_records_fit_the_taps_schema(endpoint):
    """The contract checked from the other side: what the docs say the API sends is what the
    tap declares (a field missing from a schema, or of another type, fails here)."""
    data = sample_dataset(60)
    fill_missing(data, ENDPOINTS)
    if endpoint.detail:
        records = [r for parent in data[endpoint.parent] for r in parent[endpoint.records_key]]
    else:
        records = data[endpoint.stream]
    stream = next(s for s in STREAM_TYPES if s.name == endpoint.stream)
    # What the stream declares it drops (a lead list's entries, per-record links).
    records = [{k: v for k, v in r.items() if k not in stream.ignored_fields} for r in records]
    # The class attribute is the SDK's StreamSchema descriptor; its source is public.
    schema = inspect.getattr_static(stream, "schema").schema_source.get_schema(endpoint.stream)
    validator = record_validator(json.dumps(schema, sort_keys=True))
    for record in records:
        assert [error.message for error in validator.iter_errors(record)] == [], record
    keys = [tuple(record.get(key) for key in endpoint.primary_keys) for record in records]
    assert records
    assert len(set(keys)) == len(keys), "primary keys are unique"


def test_an_endpoint_without_sample_data_is_served_copies_of_its_example():
    with FakeAmplemarketAPI(Dataset(), api_key=API_KEY) as api:
        result = sync(config_for(api, start_date="2025-12-01T00:00:00Z", page_size=5))

    counts = result.counts()
    assert counts["accounts"] == len(api.data.accounts) == 12
    assert counts["tasks"] == len(api.data.tasks) == 3 * len(api.data.users)
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
