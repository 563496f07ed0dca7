"""What a sync does under each plausible answer to what the docs leave UNKNOWN (the fake's
switches, tests/fake_api/server.py UNKNOWN_SWITCHES): it copes, reading every record, or it
stops with one line naming the fact and the setting to change. Never silently."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from tests.conftest import API_KEY, config_for, run_cli
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.endpoints import ENDPOINTS


def expected_keys(data, endpoint):
    key = endpoint.primary_keys[-1]
    if endpoint.detail:
        return sorted(r[key] for p in data[endpoint.parent] for r in p[endpoint.records_key])
    return sorted(r[key] for r in data[endpoint.stream] if isinstance(r, dict))


@pytest.mark.parametrize(
    "switch",
    [
        {"entries_key": "results"},
        {"exclusion_page_param": "size"},
        {"next_links_drop_filters": True},
        {"silent_page_caps": {"/calls": 7, "/users": 1, "/tasks": 2, "/sequences": 9}},
        {"page_size_refusal": "plain", "max_page_sizes": {"/users": 2, "/sequences": 10}},
        {"page_size_refusal": "detail", "max_page_sizes": {"/users": 2, "/excluded-emails": 0}},
        {"media_type": "application/json"},
    ],
    ids=lambda switch: next(iter(switch)) + f"={next(iter(switch.values()))}",
)
def test_the_tap_copes_with_each_answer(tmp_path, switch):
    data = sample_dataset(120, users=4)
    with FakeAmplemarketAPI(data, api_key=API_KEY, **switch) as api:
        result = run_cli([], config_for(api, page_size=5), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    for endpoint in ENDPOINTS:
        got = sorted(result.ids(endpoint.stream, endpoint.primary_keys[-1]))
        assert got == expected_keys(data, endpoint), endpoint.stream  # each once, none missing
    if switch.get("next_links_drop_filters"):
        for request in api.requests_to("/tasks"):
            assert "user_id" in request.params
        for request in api.requests_to("/calls"):
            assert {"start_date_from", "start_date_to"} <= set(request.params)
        assert "next links drop user_id of the first request" in result.stderr
        (calls_line,) = [x for x in result.stderr.splitlines() if "GET /calls's next links" in x]
        assert "start_date_from" in calls_line
        assert "start_date_to" in calls_line
    if switch.get("entries_key"):
        assert "under 'results', not 'leads'" in result.stderr


def test_a_refusal_that_names_nothing_stops_naming_the_page_size(tmp_path):
    with FakeAmplemarketAPI(
        sample_dataset(20),
        api_key=API_KEY,
        page_size_refusal="opaque",
        max_page_sizes={"/users": 5},
    ) as api:
        result = run_cli([], config_for(api, page_size=25), tmp_path)

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "/users" in last
    assert "page_size" in last
    assert "Traceback" not in result.stderr


def activate_versions(result, stream):
    return [m for m in result.messages if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream]


def test_a_403_on_one_endpoint_skips_its_stream_with_one_warning(tmp_path):
    with FakeAmplemarketAPI(
        sample_dataset(20), api_key=API_KEY, plan_lacks={"/accounts": 403}
    ) as api:
        result = run_cli([], config_for(api), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.records("accounts") == []
    assert result.records("users"), "the other streams are read"
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert "plan" in warnings[0]
    assert activate_versions(result, "accounts") == []
    assert activate_versions(result, "users")


def test_a_403_on_the_first_request_is_a_key_or_plan_problem(tmp_path):
    every_path = {endpoint.path: 403 for endpoint in ENDPOINTS}
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY, plan_lacks=every_path) as api:
        result = run_cli([], config_for(api), tmp_path)

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "403" in last
    assert "api_key" in last
    assert "plan" in last
    assert len(api.requests) == 2, "one endpoint may lack from the plan; two, the key"


def test_a_401_stays_fatal(tmp_path):
    with FakeAmplemarketAPI(sample_dataset(5), api_key=API_KEY) as api:
        result = run_cli([], {**config_for(api), "api_key": "wrong-key"}, tmp_path)

    assert result.returncode == 1
    assert "api_key" in result.stderr.strip().splitlines()[-1]
    assert len(api.requests) == 1


def test_lists_that_hide_finished_records_unfiltered_are_written_as_listed(tmp_path):
    """UNKNOWN: if unfiltered /users, /tasks, /sequences leave out inactive, finished and
    archived records, the tap writes what is listed (a full sync's ACTIVATE_VERSION then
    marks the others deleted): `--probe`'s unfiltered_* lines settle it (docs/deletions.md)."""
    data = sample_dataset(20, users=4)
    with FakeAmplemarketAPI(data, api_key=API_KEY, unfiltered_hides_finished=True) as api:
        result = run_cli([], config_for(api), tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert {u["status"] for u in result.records("users")} == {"active"}
    assert {t["status"] for t in result.records("tasks")} == {"scheduled"}
    assert {s["status"] for s in result.records("sequences")} == {"active"}
    listed = [r for r in api.requests_to("/users") if r.status == 200]
    assert all("status" not in dict(parse_qsl(r.query)) for r in listed)
