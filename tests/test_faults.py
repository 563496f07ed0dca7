"""Transient faults are survived with nothing lost; 429 waits exactly Retry-After."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import run_cli, sync
from tests.fake_api import FakeAmplemarketAPI


def all_call_ids(api):
    return sorted(call["id"] for call in api.data.calls)


EXPECTED_STATUS = {"503": 503, "reset": 0, "truncate": 200, "cut": 200}


@pytest.mark.parametrize("kind", ["503", "reset", "truncate", "cut"])
def test_transient_fault_mid_pagination_is_retried_without_loss(api, config, fast_retries, kind):
    api.fail_next(kind, times=3, path="/calls", after=2)  # the third page breaks 3 times

    result = sync({**config, "max_concurrent_requests": 1})  # one page at a time, in order

    assert sorted(result.ids("calls")) == all_call_ids(api)
    calls_requests = api.requests_to("/calls")
    broken = calls_requests[2:5]
    assert [r.status for r in broken] == [EXPECTED_STATUS[kind]] * 3
    assert all(r.params == calls_requests[5].params for r in broken), "same page retried"
    assert "page[after]" in calls_requests[5].params, "the fault hit a page after the first"


@pytest.mark.parametrize("kind", ["503", "reset", "truncate"])
def test_transient_faults_across_concurrent_windows_lose_nothing(api, config, fast_retries, kind):
    for after in (1, 4, 9):
        api.fail_next(kind, times=2, path="/calls", after=after)

    result = sync({**config, "page_size": 5, "max_concurrent_requests": 4})

    ids = result.ids("calls")
    assert sorted(ids) == all_call_ids(api)
    assert len(ids) == len(set(ids))
    assert sum(r.status == EXPECTED_STATUS[kind] for r in api.requests_to("/calls")) >= 6


def test_truncated_body_is_invalid_json_that_is_retried(api, config, fast_retries):
    api.fail_next("truncate", times=1, path="/calls/dispositions")

    result = sync(config)

    assert len(api.requests_to("/calls/dispositions")) == 2
    assert result.ids("dispositions") == [d["id"] for d in api.data.dispositions]


def test_429_waits_exactly_retry_after_then_goes_on(api, config):
    api.fail_next("429", times=2, path="/calls/dispositions", retry_after="1")

    result = sync(config)

    attempts = api.requests_to("/calls/dispositions")
    assert [r.status for r in attempts] == [429, 429, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert all(1.0 <= gap < 1.5 for gap in gaps), gaps
    assert len(result.ids("dispositions")) == len(api.data.dispositions)


def test_429_on_most_requests_completes_with_nothing_lost(api, config, fast_retries):
    # Every request is refused twice before it succeeds; Retry-After zero: a plain retry,
    # counted and backed off.
    api.fail_next("429", times=2, per_url=True, retry_after="0")

    result = sync({**config, "page_size": 100})

    assert sorted(result.ids("calls")) == all_call_ids(api)
    statuses = [r.status for r in api.requests]
    assert statuses.count(429) == 2 * statuses.count(200)


def test_429_with_a_positive_retry_after_does_not_use_up_the_retries(api, config):
    api.fail_next("429", times=6, path="/calls/dispositions", retry_after="0.01")

    result = sync({**config, "max_retries": 2})

    assert len(result.ids("dispositions")) == len(api.data.dispositions)
    assert [r.status for r in api.requests_to("/calls/dispositions")] == [429] * 6 + [200]


def test_persistent_5xx_fails_after_max_retries(api, config, fast_retries):
    from singer_sdk.exceptions import RetriableAPIError

    api.fail_next("503", times=50, path="/calls/dispositions")

    with pytest.raises(RetriableAPIError):
        sync({**config, "max_retries": 3})
    assert len(api.requests_to("/calls/dispositions")) == 3


@pytest.mark.parametrize("workers", [1, 4])
def test_a_404_in_the_middle_of_calls_fails_the_run_and_moves_no_bookmark_past_it(
    api, config, tmp_path, workers
):
    api.fail_next("404", times=None, path="/calls", after=6)
    settings = {**config, "page_size": 5, "max_concurrent_requests": workers}

    result = run_cli([], settings, tmp_path)

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert "Amplemarket answered 404 for /calls in the middle of a listing" in last_line
    assert "Skipping stream calls" not in result.stderr
    written = set(result.ids("calls"))
    bookmarks = [
        s["bookmarks"]["calls"]["replication_key_value"]
        for s in result.states
        if "replication_key_value" in s.get("bookmarks", {}).get("calls", {})
    ]
    covered = bookmarks[-1] if bookmarks else ""
    assert {c["id"] for c in api.data.calls if c["start_date"] <= covered} <= written

    with FakeAmplemarketAPI(api.data, api_key=api.api_key) as healed:
        resumed = sync({**settings, "api_url": healed.url}, state=result.last_state)
    assert written | set(resumed.ids("calls")) == {c["id"] for c in api.data.calls}


def test_a_page_without_its_list_is_retried_not_read_as_empty(api, config, fast_retries):
    # An `_errors` body with status 200 in the middle of a window: read as an empty page it
    # would end the window there, and the bookmark would pass the calls after it.
    api.fail_next("errors-200", times=2, path="/calls", after=3)

    result = sync({**config, "page_size": 5, "max_concurrent_requests": 1})

    assert sorted(result.ids("calls")) == all_call_ids(api)
    statuses = [r.status for r in api.requests_to("/calls")]
    assert statuses[3:5] == [200, 200], "the two pages without a list were asked for again"


def test_pages_without_their_list_fail_the_run_in_one_line(api, config, tmp_path):
    api.fail_next("errors-200", times=None, path="/calls", after=2)

    result = run_cli([], {**config, "max_retries": 2, "max_concurrent_requests": 1}, tmp_path)

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "Amplemarket kept failing after every retry (Response from /calls has no 'calls' list "
            "(Try again)): try again later"
        )
    )


def test_a_429_to_one_window_pauses_every_window(api, config):
    api.fail_next("429", times=1, path="/calls", after=6, retry_after="1")

    result = sync({**config, "page_size": 2, "window_days": 7, "max_concurrent_requests": 4})

    calls = api.requests_to("/calls")
    (refused,) = [r for r in calls if r.status == 429]
    # Requests already on their way land at once; none is sent until Retry-After has passed.
    quiet = [r for r in calls if refused.at + 0.2 < r.at < refused.at + 0.95]
    assert quiet == [], [round(r.at - refused.at, 2) for r in quiet]
    assert any(r.at >= refused.at + 1 for r in calls), "the other windows went on afterwards"
    assert sorted(result.ids("calls")) == all_call_ids(api)
