"""Loss-free, resumable incremental sync of calls: windows, checkpoints, lookback, kills."""

from __future__ import annotations

import datetime
import json
import random

import pytest

from tap_amplemarket.timefmt import isoformat_z, parse_timestamp
from tests.conftest import (
    TAP_COMMAND,
    config_for,
    parse_messages,
    read_until_killed,
    run_cli,
    sync,
)
from tests.fake_api import FakeAmplemarketAPI, sample_dataset
from tests.fake_api.dataset import Dataset, SampleFactory

UTC = datetime.timezone.utc


def bookmark(state: dict) -> str:
    return state["bookmarks"]["calls"]["replication_key_value"]


def late_call(api: FakeAmplemarketAPI, start_date: str) -> dict:
    call = SampleFactory(seed=99).call(
        parse_timestamp(start_date),
        api.data.users,
        api.data.dispositions,
    )
    api.add_call(call)
    return call


def test_windows_ascend_and_each_one_ends_in_a_resumable_checkpoint(config):
    # Windows aim at 20 pages of 20: 2,000 calls make several windows, and a window larger
    # than planned is read to its end.
    data = sample_dataset(2000, days=60)
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as api:
        result = sync({**config, "api_url": api.url, "page_size": 20, "max_concurrent_requests": 1})

    windows = [r.params for r in api.requests_to("/calls") if "page[after]" not in r.params]
    assert len(windows) >= 3
    starts = [w["start_date_from"] for w in windows]
    assert starts == sorted(starts), "one worker: windows in date order"
    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    bookmarks = [bookmark(s) for s in result.states if "replication_key_value" in str(s)]
    assert len(bookmarks) >= 4, "a checkpoint after every window"
    assert bookmarks == sorted(bookmarks)
    assert all("progress_markers" not in s["bookmarks"]["calls"] for s in result.states[-1:])
    assert parse_timestamp(bookmark(result.last_state)) == parse_timestamp(config["end_date"])


def test_concurrent_windows_checkpoint_only_past_windows_read_to_their_end(api, config):
    result = sync({**config, "page_size": 2, "window_days": 7, "max_concurrent_requests": 4})

    checkpoints = 0
    written: set[str] = set()
    for message in result.messages:
        if message["type"] == "RECORD" and message["stream"] == "calls":
            written.add(message["record"]["id"])
        elif message["type"] == "STATE" and "replication_key_value" in str(message):
            # The fake filters exact instants: every call before the bookmark is written.
            passed = bookmark(message["value"])
            behind = {c["id"] for c in api.data.calls if c["start_date"] < passed}
            assert behind <= written, "a checkpoint passed a call not written"
            checkpoints += 1
    assert checkpoints >= 4
    assert written == {c["id"] for c in api.data.calls}
    starts = [r.params["start_date_from"] for r in api.requests_to("/calls")]
    assert starts != sorted(starts), "windows were fetched concurrently, out of order"


def test_incremental_rerun_fetches_only_new_calls_with_a_handful_of_requests(api, config):
    first = sync(config)
    newest = bookmark(first.last_state)
    api.requests.clear()
    new_call = late_call(api, "2026-06-01T12:00:00Z")

    second = sync({**config, "end_date": "2026-06-03T00:00:00Z"}, state=first.last_state)

    assert new_call["id"] in second.ids("calls")
    assert len(api.requests_to("/calls")) <= 2, [r.params for r in api.requests]
    lookback_start = parse_timestamp(newest) - (datetime.timedelta(days=3))
    assert all(c["start_date"] >= isoformat_z(lookback_start) for c in second.records("calls"))
    assert len(second.ids("calls")) < len(first.ids("calls")) / 4
    assert bookmark(second.last_state) == "2026-06-03T00:00:00Z"


def test_a_call_logged_late_before_the_bookmark_is_picked_up(api, config):
    first = sync(config)
    two_days_before = parse_timestamp(bookmark(first.last_state)) - datetime.timedelta(days=2)
    late = late_call(api, isoformat_z(two_days_before))

    default_lookback = sync(config, state=first.last_state)
    no_lookback = sync({**config, "lookback_window_days": 0}, state=first.last_state)

    assert late["id"] in default_lookback.ids("calls")
    assert late["id"] not in no_lookback.ids("calls"), "the lookback is what finds it"
    assert bookmark(default_lookback.last_state) == bookmark(first.last_state)


def test_the_lookback_re_read_never_moves_the_bookmark_back():
    # A page a call: windows of 20 calls, many of them inside the lookback.
    with FakeAmplemarketAPI(sample_dataset(250), api_key="k", request_budget=2000) as api:
        small_windows = {
            **config_for(api), "page_size": 1, "window_days": 1, "lookback_window_days": 15
        }  # fmt: skip
        first = sync(small_windows)
        resumed_from = bookmark(first.last_state)

        second = sync(small_windows, state=first.last_state)

    bookmarks = [bookmark(s) for s in second.states if "replication_key_value" in str(s)]
    assert len(second.ids("calls")) > 2 * 20, "the lookback spans several windows of 20"
    assert bookmarks
    assert min(bookmarks) >= resumed_from
    assert bookmarks == sorted(bookmarks)


def kill_and_resume(
    tmp_path, config: dict, kill_points: list[int | None]
) -> tuple[set[str], list[int]]:
    """Run the tap once per kill point (SIGKILLed after that many RECORDs; None: let it end),
    each run from the last STATE the runs before printed. Returns the call ids delivered
    and each run's exit code."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    delivered: set[str] = set()
    state: dict | None = None
    exit_codes = []
    for kill_after in kill_points:
        command = [*TAP_COMMAND, "--config", str(tmp_path / "config.json")]
        if state:
            (tmp_path / "state.json").write_text(json.dumps(state))
            command += ["--state", str(tmp_path / "state.json")]
        lines, returncode = read_until_killed(command, kill_after)
        exit_codes.append(returncode)
        messages = parse_messages("".join(lines))
        delivered |= {
            m["record"]["id"] for m in messages if m["type"] == "RECORD" and m["stream"] == "calls"
        }
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        state = states[-1] if states else state
    return delivered, exit_codes


def test_killed_runs_resume_from_their_last_state_without_losing_a_call(tmp_path):
    """SIGKILL the tap at random points; each rerun starts from the last STATE it printed."""
    rng = random.Random(20261124)
    data = sample_dataset(400, days=60)
    with FakeAmplemarketAPI(data, api_key="k") as api:
        config = config_for(api, page_size=10, window_days=5, lookback_window_days=0)
        kills = [rng.randint(1, 150) for _ in range(5)]
        delivered, exit_codes = kill_and_resume(tmp_path, config, [*kills, None])

    assert exit_codes[:5] == [-9] * 5, "each of the five runs was killed before its end"
    assert exit_codes[5] == 0
    assert delivered == {call["id"] for call in data.calls}


def test_a_call_updated_after_the_fact_is_delivered_again(api, config):
    first = sync(config)
    newest = max(api.data.calls, key=lambda c: c["start_date"])
    newest["disposition_id"] = api.data.dispositions[0]["id"]  # set in the app, a day later
    newest["transcription"] = "Transcribed later."

    second = sync(config, state=first.last_state)

    updated = [r for r in second.records("calls") if r["id"] == newest["id"]]
    assert len(updated) == 1
    assert updated[0]["disposition_id"] == api.data.dispositions[0]["id"]
    assert updated[0]["transcription"] == "Transcribed later."


def test_a_first_sync_without_start_date_reads_all_history_in_few_requests(api, config):
    settings = {k: v for k, v in config.items() if k != "start_date"}

    result = sync({**settings, "page_size": 100})

    assert set(result.ids("calls")) == {c["id"] for c in api.data.calls}
    earliest = min(r.params["start_date_from"] for r in api.requests_to("/calls"))
    assert earliest == "2009-12-28T23:59:59Z", "2010-01-01 less the lookback, and a second"
    # 16 empty years before the data cost a handful of doubling windows, not 800 weekly ones.
    assert len(api.requests_to("/calls")) < 40


def burst_dataset(sparse: int = 120, burst: int = 2000) -> Dataset:
    """`sparse` calls over three years and a `burst` of calls in one day in the middle of
    them: a window sized from the sparse density holds the whole burst."""
    return sample_dataset(sparse, days=3 * 365, burst=burst)


def test_a_burst_of_one_second_costs_its_pages_and_a_few_dozen_requests(config):
    # A bulk import: 4,500 calls stamped with one start_date in three quiet years. The window
    # holding it is read to its end; the windows after it are sized from what it held.
    data = sample_dataset(500, days=3 * 365, burst=4500, burst_seconds=1)
    page_size = 100
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as api:
        settings = {k: v for k, v in config.items() if k != "start_date"}
        result = sync({**settings, "api_url": api.url, "page_size": page_size})
        requests = len(api.requests_to("/calls"))

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    bookmarks = [bookmark(s) for s in result.states if "replication_key_value" in str(s)]
    assert bookmarks == sorted(bookmarks)
    pages = -(-len(data.calls) // page_size)
    assert requests <= pages + 36, (requests, pages)


def test_killed_runs_across_a_burst_resume_without_losing_a_call(tmp_path):
    # Kills inside the window holding the burst, and after it.
    data = burst_dataset(sparse=60, burst=1200)
    with FakeAmplemarketAPI(data, api_key="k") as api:
        config = config_for(api, page_size=10, lookback_window_days=0)
        del config["start_date"]
        delivered, exit_codes = kill_and_resume(tmp_path, config, [700, 400, 250, 120, None])

    assert exit_codes == [-9, -9, -9, -9, 0]
    assert delivered == {call["id"] for call in data.calls}


def test_a_burst_from_an_api_whose_order_says_nothing_of_dates_loses_nothing(config):
    # The calls come in id order: the window holding the burst is read to its end.
    data = burst_dataset(sparse=60, burst=1200)
    with FakeAmplemarketAPI(data, api_key=config["api_key"], calls_by_id=True) as api:
        settings = {k: v for k, v in config.items() if k != "start_date"}
        result = sync({**settings, "api_url": api.url, "page_size": 10})

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    bookmarks = [bookmark(s) for s in result.states if "replication_key_value" in str(s)]
    assert bookmarks == sorted(bookmarks)
    assert parse_timestamp(bookmarks[-1]) == parse_timestamp(config["end_date"])


def calls_at(data: Dataset, when: datetime.datetime, count: int, seconds: int = 1) -> None:
    """`count` calls spread over `seconds` seconds from `when`."""
    factory = SampleFactory(seed=5)
    data.calls.extend(
        factory.call(when + datetime.timedelta(seconds=i % seconds), data.users, data.dispositions)
        for i in range(count)
    )


@pytest.mark.parametrize("workers", [1, 4])
def test_calls_of_one_second_listed_by_id_are_no_evidence_of_order(workers):
    # 200 calls of one second, then one ten days later whose id sorts last. (An engine that
    # took the first pages as newest first never read what was newer.)
    burst = datetime.datetime(2026, 3, 10, 12, tzinfo=UTC)
    data = sample_dataset(0)
    calls_at(data, burst, 200)
    calls_at(data, burst + datetime.timedelta(days=10), 1)
    data.calls[-1]["id"] = "00000000-0000-4000-8000-000000000001"  # last, in descending order
    with FakeAmplemarketAPI(data, api_key="k", calls_by_id=True) as api:
        config = config_for(
            api, page_size=20, window_days=30, max_concurrent_requests=workers,
            start_date="2026-03-05T12:00:00Z", end_date="2026-03-30T12:00:00Z",
        )  # fmt: skip
        result = sync(config)

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}


@pytest.mark.parametrize("workers", [1, 4])
def test_calls_listed_by_id_that_look_newest_first_are_no_evidence_of_order(workers):
    # Listed by id: a call at T+1s, 60 at T, then one ten days later: the first pages look
    # newest first by chance. (An engine that took that as proof lost the later call.)
    burst = datetime.datetime(2026, 3, 10, 12, tzinfo=UTC)
    data = sample_dataset(0)
    calls_at(data, burst + datetime.timedelta(seconds=1), 1)
    calls_at(data, burst, 60)
    calls_at(data, burst + datetime.timedelta(days=10), 1)
    calls_at(data, burst + datetime.timedelta(days=40), 1)  # a later window's checkpoint
    ids = [f"{'f' * 8}-0000-4000-8000-000000000000"]  # listed first
    ids += [f"8{i:07x}-0000-4000-8000-000000000000" for i in range(60)]
    ids += ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
    for call, call_id in zip(data.calls, ids, strict=True):
        call["id"] = call_id
    with FakeAmplemarketAPI(data, api_key="k", calls_by_id=True) as api:
        config = config_for(
            api, page_size=20, window_days=30, max_concurrent_requests=workers,
            lookback_window_days=0,
            start_date="2026-03-05T12:00:00Z", end_date="2026-05-01T00:00:00Z",
        )  # fmt: skip
        result = sync(config)

    assert sorted(set(result.ids("calls"))) == sorted(ids)


def test_a_burst_listed_by_id_far_below_the_range_end_is_read_in_few_passes():
    # (An engine that cut such a window re-read it less one stretch at its top: ~1,000
    # requests, then a RecursionError.)
    burst = datetime.datetime(2026, 5, 25, 17, 37, 42, tzinfo=UTC)
    data = sample_dataset(0)
    calls_at(data, burst, 100, seconds=2)
    with FakeAmplemarketAPI(data, api_key="k", calls_by_id=True) as api:
        config = config_for(
            api, page_size=50, max_concurrent_requests=2, window_days=12,
            start_date="2026-05-01T00:00:00Z",
            end_date=isoformat_z(burst + datetime.timedelta(days=40)),
        )  # fmt: skip
        result = sync(config)
        requests = len(api.requests_to("/calls"))

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    assert requests < 20


def test_a_busy_second_after_a_quiet_week_costs_a_few_requests(config):
    # 150 calls in the last second of the range: the window holding it is read whole.
    data = sample_dataset(0)
    factory = SampleFactory(seed=3)
    busy = datetime.datetime(2026, 3, 7, 23, 59, 59, tzinfo=datetime.timezone.utc)
    data.calls.extend(factory.call(busy, data.users, data.dispositions) for _ in range(150))
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as api:
        settings = {**config, "api_url": api.url, "page_size": 100, "window_days": 7}
        result = sync({**settings, "end_date": "2026-03-08T00:00:00Z"})
        requests = len(api.requests_to("/calls"))

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    assert requests <= 6, "a few windows, the busy second's two pages"


def test_years_of_sparse_history_take_close_to_the_fewest_requests(config):
    # 2,000 calls over five years: the windows grow to hold about 20 pages each.
    data = sample_dataset(2000, days=5 * 365)
    page_size = 20
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as api:
        settings = {**config, "api_url": api.url, "page_size": page_size}
        result = sync({**settings, "start_date": "2021-06-01T00:00:00Z"})
        requests = len(api.requests_to("/calls"))

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    fewest = -(-len(data.calls) // page_size)
    assert requests <= 1.05 * fewest + 5, (requests, fewest)


@pytest.mark.parametrize("workers", [1, 4])
def test_one_old_call_in_decades_of_quiet_history_does_not_end_the_plan(config, workers):
    # Empty windows grow fourfold to twenty years; the one that holds a lone 2005 call then
    # sizes the next at thousands of years, which overflowed Python's dates and, with one
    # worker, hung the run.
    data = sample_dataset(200, days=7 * 200, end=datetime.datetime(2025, 1, 1, tzinfo=UTC))
    lone = datetime.datetime(2005, 6, 1, tzinfo=UTC)
    data.calls.insert(0, SampleFactory(seed=4).call(lone, data.users, data.dispositions))
    with FakeAmplemarketAPI(data, api_key=config["api_key"]) as api:
        settings = {**config, "api_url": api.url, "start_date": "1990-01-01T00:00:00Z"}
        settings |= {"end_date": "2026-01-01T00:00:00Z", "window_days": 7, "page_size": 100}
        result = sync({**settings, "max_concurrent_requests": workers})

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}


def test_requests_in_flight_never_exceed_max_concurrent_requests(config):
    # A burst makes windows of its own, fetched by workers of their own beside the stream's:
    # the requests on their way together stay within the setting all the same.
    data = sample_dataset(3000, days=60, burst=3000)  # the busy day among busy ones
    latency = 0.05
    with FakeAmplemarketAPI(data, api_key=config["api_key"], latency=latency) as api:
        result = sync({**config, "api_url": api.url, "page_size": 20, "window_days": 3})
        starts = sorted(r.at for r in api.requests_to("/calls"))

    assert set(result.ids("calls")) == {c["id"] for c in data.calls}
    # Each answer takes `latency`: requests that arrived within it of each other overlapped.
    overlapping = max(
        sum(1 for other in starts if start <= other < start + latency * 0.9) for start in starts
    )
    assert 2 <= overlapping <= 4, overlapping


@pytest.mark.parametrize("resumed", [False, True])
def test_an_api_that_ignores_the_date_filter_is_named_not_paid_for(tmp_path, resumed):
    # An API serving the whole history for every window: a first sync would read it once per
    # window. The run stops in its first window, with one line, after the last good STATE.
    data = sample_dataset(3000, days=60)
    with FakeAmplemarketAPI(data, api_key="k") as api:
        config = config_for(api, page_size=20)
        state = sync(config).last_state if resumed else None
        api.calls_date_filter = "ignored"
        api.requests.clear()
        result = run_cli([], config, tmp_path, state=state)
        requests = len(api.requests_to("/calls"))

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, errors
    assert "ignored the date filter of GET /calls" in errors[0]
    assert "Traceback" not in result.stderr
    calls_states = [s for s in result.states if "replication_key_value" in str(s)]
    assert all(
        s["bookmarks"]["calls"] == (state or {}).get("bookmarks", {}).get("calls")
        for s in calls_states
    ), "no STATE past the last good one"
    # The history is 150 pages: at most the first window's own calls and as many again.
    assert requests <= 30, "stopped within a few pages, not the history once per window"
