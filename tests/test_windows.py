"""Date windows on their own: the declaration, planning, sizing, cutting, the query."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import random

import pytest

from tap_amplemarket.streams import CallsStream
from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.timefmt import parse_timestamp, read_instant
from tap_amplemarket.windows import (
    ONE_SECOND,
    DateWindows,
    Sizer,
    Window,
    plan_windows,
    split,
)

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def assert_tiles(windows: list[Window], start: datetime.datetime, end: datetime.datetime) -> None:
    """Contiguous, non-empty, ascending windows covering exactly [start, end)."""
    assert windows[0].lower == start
    assert windows[-1].upper == end
    assert all(window.lower < window.upper for window in windows)
    assert all(a.upper == b.lower for a, b in itertools.pairwise(windows))


def test_the_settings_default_to_what_the_calls_stream_declares():
    declared = CallsStream.date_windows
    settings = TapAmplemarket.config_jsonschema["properties"]

    assert declared == DateWindows("start_date_from", "start_date_to", 7, 3)
    assert settings["window_days"]["default"] == declared.first_window_days
    assert settings["lookback_window_days"]["default"] == declared.lookback_days
    assert CallsStream.replication_key == "start_date"
    with pytest.raises(dataclasses.FrozenInstanceError):
        declared.lookback_days = 1  # type: ignore[misc]


@pytest.mark.parametrize("seed", range(20))
def test_planned_windows_tile_the_range_whatever_the_sizes(seed):
    rng = random.Random(seed)
    start = START + datetime.timedelta(microseconds=rng.choice([0, 500_000]))
    end = start + datetime.timedelta(seconds=rng.randint(1, 10**7), microseconds=rng.randint(0, 9))

    windows = list(plan_windows(start, end, lambda _left: rng.choice([0.1, 1, 3600, 1e12])))

    assert_tiles(windows, start, end)


def test_an_empty_range_plans_no_window():
    assert list(plan_windows(START, START, lambda _left: 3600)) == []


def test_windows_grow_fourfold_after_empty_ones_and_aim_at_the_target_after_others():
    sizer = Sizer(first=7 * DAY, target=2000, workers=4)
    assert sizer.span(1000 * DAY) == (7 * DAY / 4).total_seconds(), "a worker's share"

    sizer.observe(Window(START, START + DAY), 0)
    assert sizer.span(1000 * DAY) == (4 * DAY).total_seconds()

    sizer.observe(Window(START + DAY, START + 2 * DAY), 4000)
    assert sizer.span(1000 * DAY) == (DAY / 2).total_seconds()
    # Near the end: shared by the workers, down to half the target.
    assert sizer.span(DAY) == (DAY / 4).total_seconds()
    assert sizer.span(DAY / 10) == (DAY / 4).total_seconds()


def test_a_quiet_weekend_does_not_size_the_next_window_for_a_quiet_year():
    sizer = Sizer(first=7 * DAY, target=2000, workers=1)
    sizer.observe(Window(START, START + DAY), 2000)
    sizer.observe(Window(START + DAY, START + 3 * DAY), 1)  # the weekend

    assert sizer.span(1000 * DAY) == pytest.approx(3 * 86400 * 2000 / 2001), "not 2 days x 2000"


def test_a_lone_record_in_decades_sizes_a_window_beyond_any_date_without_overflow():
    sizer = Sizer(first=7 * DAY, target=2000, workers=1)
    sizer.observe(Window(START - 30 * 365 * DAY, START), 1)
    end = datetime.datetime(2999, 12, 31, tzinfo=UTC)

    windows = list(plan_windows(START, end, sizer.span))

    assert windows == [Window(START, end)]


def test_the_query_is_a_second_wider_on_each_side_on_whole_seconds():
    window = Window(START + datetime.timedelta(microseconds=250), START + DAY)

    assert window.query(DateWindows("from", "to", 1, 0)) == {
        "from": "2026-03-01T07:59:59Z",
        "to": "2026-03-02T08:00:01Z",
    }


@pytest.mark.parametrize("seed", range(30))
def test_a_dropped_window_is_cut_into_parts_that_tile_it(seed):
    rng = random.Random(seed)
    window = Window(START, START + datetime.timedelta(seconds=rng.randint(2, 10**8)))
    seconds = int(window.span.total_seconds())
    clusters = [rng.randrange(seconds) for _ in range(rng.randint(0, 5))]
    sample = [
        START + datetime.timedelta(seconds=rng.choice(clusters), microseconds=rng.randrange(10**6))
        for _ in range(rng.randint(0, 500))
        if clusters
    ]

    parts = split(window, sample, target=50)

    assert len(parts) >= 2
    assert_tiles(parts, window.lower, window.upper)
    # Each part asks a narrower query than the window: cutting always gets somewhere.
    spec = DateWindows("from", "to", 1, 0)
    for part in parts:
        query, whole = part.query(spec), window.query(spec)
        assert query != whole
        assert whole["from"] <= query["from"]
        assert query["to"] <= whole["to"]


def test_a_sample_spanning_the_whole_window_still_cuts_it():
    # Found by the property test: the oldest and newest sampled seconds were the window's
    # bounds, so the cuts beyond the sample fell outside it, and the window was skipped.
    window = Window(START, START + DAY)
    sample = [START + datetime.timedelta(microseconds=999_999), START + DAY / 3, START + DAY / 2]
    sample.append(START + DAY - ONE_SECOND)

    parts = split(window, sample, target=20)

    assert len(parts) >= 2
    assert_tiles(parts, window.lower, window.upper)


def test_a_crowded_second_becomes_a_part_of_its_own():
    crowded = START + 5 * DAY
    window = Window(START, START + 10 * DAY)

    parts = split(window, [crowded + datetime.timedelta(microseconds=i) for i in range(200)], 50)

    assert Window(crowded, crowded + ONE_SECOND) in parts


def test_a_window_of_one_second_cannot_be_cut():
    window = Window(START, START + ONE_SECOND)

    assert not window.can_split()
    assert split(window, [START] * 500, 50) == []
    assert Window(START, START + 2 * ONE_SECOND).can_split()


@pytest.mark.parametrize(
    "text", ["2016-12-31T23:59:60Z", "2017-01-01 01:59:60+02:00", "2016-12-31t23:59:60.5z"]
)
def test_a_leap_second_is_read_as_the_last_instant_of_the_second_before(text):
    expected = datetime.datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

    assert parse_timestamp(text) == expected
    assert read_instant(text) == (expected, False)
