"""Date windows on their own: the declaration, the query, sizing, the estimate, and the engine
run with plain callables."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import random
import typing as t

import pytest

from tap_amplemarket.progress import estimate_left
from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.timefmt import parse_timestamp, read_instant
from tap_amplemarket.windows import (
    DateFilterIgnoredError,
    DateWindows,
    Plan,
    Sizer,
    Window,
    read_in_windows,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
SPEC = DateWindows("from", "to", 1, 0)


def plan_for(
    calls: list[datetime.datetime], end: datetime.datetime, **changes
) -> tuple[Plan, list]:
    """A plan over [START, end) whose fetch answers from `calls` (dates, each its own record),
    exact bounds [from, to); and the list its checkpoints and windows read are noted in."""
    noted: list = []

    def fetch(window: Window) -> Iterator[dict]:
        query = window.query(SPEC)
        low, high = parse_timestamp(query["from"]), parse_timestamp(query["to"])
        yield from ({"at": when} for when in calls if low <= when < high)
        noted.append(window)  # read to its end

    plan = Plan(
        start=START,
        end=end,
        first_span=7 * DAY,
        target=20,
        workers=1,
        fetch=fetch,
        date_of=lambda record: record["at"],
        checkpoint=lambda upper: noted.append(upper),
        log=lambda line: None,
    )
    return plan._replace(**changes), noted


def test_the_settings_default_to_what_the_calls_stream_declares():
    declared = CallsStream.date_windows
    settings = TapAmplemarket.config_jsonschema["properties"]

    assert declared == DateWindows("start_date_from", "start_date_to", 7, 3)
    assert settings["window_days"]["default"] == declared.first_window_days
    assert settings["lookback_window_days"]["default"] == declared.lookback_days
    assert CallsStream.replication_key == "start_date"
    with pytest.raises(dataclasses.FrozenInstanceError):
        declared.lookback_days = 1  # type: ignore[misc]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("workers", [1, 3])
def test_windows_tile_the_range_and_every_call_is_written(seed, workers):
    rng = random.Random(seed)
    end = START + datetime.timedelta(seconds=rng.randint(1, 10**7), microseconds=rng.randint(0, 9))
    span = int((end - START).total_seconds())
    calls = sorted(START + datetime.timedelta(seconds=rng.randrange(span)) for _ in range(300))
    plan, noted = plan_for(calls, end, workers=workers)

    written = [record["at"] for record in read_in_windows(plan)]

    windows = sorted(w for w in noted if isinstance(w, Window))
    assert windows[0].lower == START
    assert windows[-1].upper == end
    assert all(a.upper == b.lower for a, b in itertools.pairwise(windows)), "no gap, no overlap"
    assert set(written) == set(calls)
    checkpoints = [c for c in noted if isinstance(c, datetime.datetime)]
    assert checkpoints == sorted(checkpoints)
    assert checkpoints[-1] == end


def test_a_checkpoint_comes_only_after_every_window_before_it_is_read():
    calls = [START + i * DAY / 10 for i in range(200)]
    plan, noted = plan_for(calls, START + 20 * DAY, workers=3)
    read_windows: list[Window] = []

    for _ in read_in_windows(plan):
        pass
    for item in noted:
        if isinstance(item, Window):
            read_windows.append(item)
        else:  # every window below the checkpoint was read to its end before it
            below = [w.upper - w.lower for w in read_windows if w.upper <= item]
            assert sum(below, datetime.timedelta(0)) == item - START


def test_an_api_ignoring_the_filter_stops_the_run_without_a_checkpoint():
    history = [START - 400 * DAY + i * DAY for i in range(100)]
    plan, noted = plan_for(history, START + 30 * DAY)
    plan = plan._replace(fetch=lambda window: [{"at": when} for when in reversed(history)])

    with pytest.raises(DateFilterIgnoredError, match="ignored the date filter"):
        list(read_in_windows(plan))
    assert not [c for c in noted if isinstance(c, datetime.datetime)]


def test_the_query_covers_the_window_strictly_and_overlaps_the_one_before_by_a_second():
    window = Window(START + datetime.timedelta(microseconds=250), START + DAY)

    assert window.query(SPEC) == {"from": "2026-03-01T07:59:59Z", "to": "2026-03-02T08:00:00Z"}
    after = Window(START + DAY, START + 2 * DAY).query(SPEC)
    assert after["from"] == "2026-03-02T07:59:59Z"


def sizer(workers: int = 4) -> Sizer:
    plan, _ = plan_for([], START)
    return Sizer(plan._replace(first_span=7 * DAY, target=2000, workers=workers))


def test_windows_grow_fourfold_after_empty_ones_and_aim_at_the_target_after_others():
    sizing = sizer()
    assert sizing.span(1000 * 86400) == (7 * DAY / 4).total_seconds(), "a worker's share"

    sizing.observe(Window(START, START + DAY), 0)
    assert sizing.span(1000 * 86400) == (4 * DAY).total_seconds()

    sizing.observe(Window(START + DAY, START + 2 * DAY), 4000)
    assert sizing.span(1000 * 86400) == (DAY / 2).total_seconds()
    # Near the end: shared by the workers, down to half the target.
    assert sizing.span(86400) == (DAY / 4).total_seconds()
    assert sizing.span(8640) == (DAY / 4).total_seconds()


def test_a_quiet_weekend_does_not_size_the_next_window_for_a_quiet_year():
    sizing = sizer(workers=1)
    sizing.observe(Window(START, START + DAY), 2000)
    sizing.observe(Window(START + DAY, START + 3 * DAY), 1)  # the weekend

    assert sizing.span(1000 * 86400) == pytest.approx(3 * 86400 * 2000 / 2001)


def test_a_lone_record_in_decades_sizes_a_window_beyond_any_date_without_overflow():
    end = datetime.datetime(2999, 12, 31, tzinfo=UTC)
    plan, noted = plan_for([START + DAY], end, first_span=30 * 365 * DAY)

    assert [r["at"] for r in read_in_windows(plan)] == [START + DAY]
    assert noted[-1] == end


def test_the_estimate_of_what_is_left_never_climbs_at_a_steady_pace_however_windows_shrink():
    # The range read at a steady pace, in windows that shrink near the end (as the sizer
    # cuts them to keep every worker busy): an estimate by windows left climbed then.
    done, elapsed, estimates = 0.0, 0.0, []
    for width in [100.0] * 9 + [50.0, 25.0, 12.5, 12.5]:
        done, elapsed = done + width, elapsed + width / 10  # 10 seconds of range a second
        estimates.append(estimate_left(elapsed, done, 1000 - done))
    assert estimates == sorted(estimates, reverse=True)
    assert estimates[-1] == pytest.approx(0)
    assert estimate_left(5, 0, 1000) is None


@pytest.mark.parametrize(
    "text", ["2016-12-31T23:59:60Z", "2017-01-01 01:59:60+02:00", "2016-12-31t23:59:60.5z"]
)
def test_a_leap_second_is_read_as_the_last_instant_of_the_second_before(text):
    expected = datetime.datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

    assert parse_timestamp(text) == expected
    assert read_instant(text) == (expected, False)
