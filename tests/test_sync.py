"""Full syncs through real HTTP: every call once across pages and windows, next links
followed as given and kept under api_url, the date bounds, the headers sent, and fields
left out of the catalog."""

from __future__ import annotations

import datetime
import json
from urllib.parse import parse_qsl

import pytest

from tap_amplemarket.errors import ForeignLinkError
from tap_amplemarket.http import link_url
from tests.conftest import sync
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.dataset import SampleFactory


def test_every_call_of_a_multi_page_dataset_is_delivered_once(api, config):
    result = sync(config)

    ids = result.ids("calls")
    assert len(ids) == len(set(ids)), "a call was delivered twice"
    assert set(ids) == {call["id"] for call in api.data.calls}
    calls_requests = api.requests_to("/calls")
    assert sum("page[after]" in r.params for r in calls_requests) >= 5, "expected several pages"
    assert result.ids("dispositions") == [d["id"] for d in api.data.dispositions]


def test_next_link_is_followed_as_given_without_appending_params(api, config):
    sync(config)

    served_next_links = set()
    for request in api.requests_to("/calls"):
        keys = [key for key, _ in parse_qsl(request.query)]
        assert len(keys) == len(set(keys)), f"a parameter was sent twice: {request.query}"
        if "page[after]" in request.params:
            served_next_links.add(request.query)
            # Exactly what the previous page's next link carried: filters, size, cursor.
            assert set(request.params) == {
                "start_date_from",
                "start_date_to",
                "page[size]",
                "page[after]",
            }
    assert len(served_next_links) >= 5
    assert all(r.status == 200 for r in api.requests)


def test_records_match_the_schema_types_and_keep_nulls(api, config):
    records = {r["id"]: r for r in sync(config).records("calls")}
    source = {c["id"]: c for c in api.data.calls}

    for call_id, record in records.items():
        expected = source[call_id]
        for field in ("duration", "answered", "human", "contact", "disposition_id", "start_date"):
            assert record[field] == expected[field]
    assert any(r["contact"] is None for r in records.values())
    assert any(r.get("recording_url") for r in records.values()), "sent with some calls"
    assert any(r.get("recording_url") is None for r in records.values()), "not with others"


def test_page_size_is_clamped_to_the_endpoint_maximum(api, config):
    sync({**config, "page_size": 5000})

    sizes = {r.params.get("page[size]") for r in api.requests_to("/calls")}
    assert sizes == {"100"}
    assert "page[size]" not in api.requests_to("/calls/dispositions")[0].params


def test_bearer_key_and_user_agent_are_sent(api, config):
    sync({**config, "user_agent": "acme-elt/1.0"})

    first = api.requests[0].headers
    seen = {"auth": first.get("Authorization"), "ua": first.get("User-Agent")}
    assert seen == {"auth": f"Bearer {config['api_key']}", "ua": "acme-elt/1.0"}
    sent = {(r.headers.get("Authorization"), r.headers.get("User-Agent")) for r in api.requests}
    assert sent == {(seen["auth"], seen["ua"])}, "on every request"


def test_start_and_end_date_bound_the_calls(api, config):
    window = {"start_date": "2026-05-01T00:00:00Z", "end_date": "2026-05-15T00:00:00Z"}
    result = sync({**config, **window})

    expected = {
        c["id"]
        for c in api.data.calls
        if window["start_date"] <= c["start_date"] < window["end_date"]
    }
    assert expected <= set(result.ids("calls"))
    assert expected
    # From start_date less the lookback (a filter read in another time zone or in whole days
    # misses nothing from start_date on), to end_date; what the API serves is written.
    assert min(result.ids("calls", key="start_date")) >= "2026-04-27T23:59:59Z"
    assert max(result.ids("calls", key="start_date")) < window["end_date"]


def test_calls_outside_the_padded_query_window_are_not_duplicated(config):
    # Calls sitting exactly on window boundaries (midnight) are delivered once.
    data = sample_dataset(120, days=60)  # step of 12 h: many calls at 00:00:00
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as server:
        ids = sync({**config, "api_url": server.url, "window_days": 1}).ids("calls")
    on_midnight = [c for c in data.calls if c["start_date"].endswith("T00:00:00Z")]
    assert on_midnight
    assert sorted(ids) == sorted(c["id"] for c in data.calls)


def test_an_end_with_fractions_of_a_second_or_none_ends_the_walk(api, config):
    bounded = sync({**config, "end_date": "2026-06-02T00:00:00.654321Z"})
    until_now = sync({k: v for k, v in config.items() if k != "end_date"})

    all_ids = sorted(c["id"] for c in api.data.calls)
    assert sorted(bounded.ids("calls")) == all_ids
    assert sorted(until_now.ids("calls")) == all_ids


def test_a_start_and_an_end_with_fractions_of_a_second_keep_their_meaning(config):
    # [08:00:00.5, 12:00:00.5): a call at 12:00:00 is inside (one at 08:00:00, before it, is
    # in the lookback and the padded query: served, so written).
    data = sample_dataset(0)
    factory = SampleFactory(seed=5)
    day = datetime.datetime(2026, 3, 10, tzinfo=datetime.timezone.utc)
    before_start, inside, before_end = (
        factory.call(day + datetime.timedelta(hours=hour), data.users, data.dispositions)
        for hour in (8, 10, 12)
    )
    data.calls += [before_start, inside, before_end]
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as server:
        range_ = {"start_date": "2026-03-10T08:00:00.500Z", "end_date": "2026-03-10T12:00:00.5Z"}
        ids = sync({**config, "api_url": server.url, **range_}).ids("calls")

    assert {inside["id"], before_end["id"]} <= set(ids), "what the range holds is written"


@pytest.mark.parametrize(
    ("base", "href", "expected"),
    [
        (
            "https://api.amplemarket.com",
            "/calls?page[after]=x",
            "https://api.amplemarket.com/calls?page[after]=x",
        ),
        (
            "http://proxy.local/amplemarket",
            "/calls?a=1",
            "http://proxy.local/amplemarket/calls?a=1",
        ),
        (
            "https://api.amplemarket.com",
            "https://API.amplemarket.com:443/calls?a=1",
            "https://API.amplemarket.com:443/calls?a=1",
        ),
        ("https://api.amplemarket.com/v1", "calls?a=1", "https://api.amplemarket.com/v1/calls?a=1"),
    ],
)
def test_next_links_resolve_under_api_url(base, href, expected):
    assert link_url(base, href) == expected


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        # Root-relative: under api_url's path ("Links are relative to the base URL").
        ("/calls?page[after]=b", "http://proxy.local/amp/calls?page[after]=b"),
        # Any other relative link: against the page it came from, as RFC 3986 says.
        ("?page[after]=b", "http://proxy.local/amp/lead-lists/7?page[after]=b"),
        ("8?page[after]=b", "http://proxy.local/amp/lead-lists/8?page[after]=b"),
        ("../users", "http://proxy.local/amp/users"),
    ],
)
def test_relative_next_links_resolve_against_their_page(href, expected):
    page = "http://proxy.local/amp/lead-lists/7?page[size]=5&page[after]=a"

    assert link_url("http://proxy.local/amp", href, page) == expected


@pytest.mark.parametrize(
    ("base", "href"),
    [
        ("http://proxy.local/amplemarket", "https://api.amplemarket.com/calls?a=1"),
        ("https://api.amplemarket.com", "//evil.example/calls?a=1"),
        ("https://api.amplemarket.com", "http://api.amplemarket.com/calls?a=1"),
        ("https://api.amplemarket.com", "https://api.amplemarket.com:8443/calls?a=1"),
        ("https://api.amplemarket.com", "https://api.amplemarket.com.evil.example/calls"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000@evil.example/calls"),
    ],
)
def test_next_links_to_another_origin_are_refused(base, href):
    with pytest.raises(ForeignLinkError, match="refusing to send the API key there"):
        link_url(base, href)


def test_a_path_prefixed_api_url_is_kept_for_next_pages(config):
    """A proxy that serves the API under /amplemarket sees every page under that prefix."""
    data = sample_dataset(250)
    with FakeAmplemarketAPI(data, api_key=config["api_key"], path_prefix="/amplemarket") as api:
        result = sync({**config, "api_url": api.url + "/amplemarket"})

    assert sorted(result.ids("calls")) == sorted(c["id"] for c in data.calls)
    seen_paths = [r.target.split("?")[0] for r in api.requests]
    assert seen_paths
    assert all(path.startswith("/amplemarket/") for path in seen_paths)


def test_deselected_fields_are_left_out_and_selected_ones_kept(api, config, tmp_path):
    from tests.conftest import run_cli

    catalog = json.loads(run_cli(["--discover"], config, tmp_path).stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if stream["tap_stream_id"] == "calls" and entry["breadcrumb"] in (
                [],
                ["properties", "notes"],
            ):
                entry["metadata"]["selected"] = entry["breadcrumb"] == []
            elif entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "users"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))

    result = run_cli(["--catalog", str(tmp_path / "catalog.json")], config, tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    calls, users = result.records("calls"), result.records("users")
    assert len(calls) == len(api.data.calls)
    assert all("notes" not in call and "contact" in call for call in calls)
    assert all("mailboxes" in user for user in users), "a fully selected stream keeps all"
