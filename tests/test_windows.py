"""Date windows on their own: planning, sizing, splitting, and the ordered concurrent fetcher."""

from __future__ import annotations

import datetime
import itertools
import random
import threading
import time

import pytest

from tap_amplemarket.windows import (
    ONE_SECOND,
    DensitySizer,
    OrderedFetcher,
    PageBudget,
    Window,
    plan_windows,
    up_to_whole_second,
)

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 1, 1, 10, 0, 0, 250_000, tzinfo=UTC)


def assert_tiles(windows: list[Window], start: datetime.datetime, end: datetime.datetime) -> None:
    """Contiguous, ascending, whole seconds, covering [start, end) rounded up to whole
    seconds: the API's dates are whole seconds, so the same calls."""
    assert windows[0].lower == up_to_whole_second(start) >= start
    assert windows[-1].upper == up_to_whole_second(end) >= end
    assert windows[0].lower - start < ONE_SECOND
    assert windows[-1].upper - end < ONE_SECOND
    for window in windows:
        assert window.lower < window.upper
        assert window.lower.microsecond == window.upper.microsecond == 0
    for before, after in itertools.pairwise(windows):
        assert before.upper == after.lower, "no gap, no overlap"


@pytest.mark.parametrize("seed", range(25))
def test_planned_windows_tile_the_range_whatever_the_sizes(seed):
    rng = random.Random(seed)
    end = START + datetime.timedelta(days=rng.uniform(0.001, 4000))
    sizes = [0.0, 1e-6, 0.4, 1.0, 59.9, 3600.5, 86400 * 400.0]

    windows = list(
        plan_windows(START, end, lambda _left: datetime.timedelta(seconds=rng.choice(sizes)))
    )

    assert_tiles(windows, START, end)


def test_a_range_with_fractions_of_a_second_starts_and_ends_on_the_next_whole_second():
    # A call at 08:00:00 is before a start of 08:00:00.5, one at 12:00:00 before an end
    # of 12:00:00.5: the windows are [08:00:01, 12:00:01), not [08:00:00, 12:00:00).
    start = datetime.datetime(2026, 3, 10, 8, 0, 0, 500_000, tzinfo=UTC)
    end = datetime.datetime(2026, 3, 10, 12, 0, 0, 500_000, tzinfo=UTC)

    windows = list(plan_windows(start, end, lambda left: left))

    assert windows == [
        Window(start.replace(microsecond=0) + ONE_SECOND, end.replace(microsecond=0) + ONE_SECOND)
    ]
    last = datetime.datetime(9999, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert up_to_whole_second(last) == last.replace(microsecond=0), "no second after it"


def test_an_empty_range_has_no_window():
    assert list(plan_windows(START, START, lambda _left: datetime.timedelta(days=1))) == []


YEARS = datetime.timedelta(days=3650)  # what is left of the range: plenty


def test_sizer_starts_at_the_initial_size_then_follows_density():
    sizer = DensitySizer(initial=datetime.timedelta(days=7), target_calls=2000)
    day = datetime.timedelta(days=1)
    first = Window(START, START + 7 * day)

    assert sizer.next_size(YEARS) == 7 * day
    sizer.observe(first, 0)
    assert sizer.next_size(YEARS) == 28 * day, "an empty window: four times longer"
    sizer.observe(Window(first.upper, first.upper + 28 * day), 280)  # 10 calls a day
    assert sizer.next_size(YEARS) == 200 * day, "2,000 calls at 10 a day"


def test_near_the_end_windows_shrink_to_keep_every_worker_busy():
    day = datetime.timedelta(days=1)
    sizer = DensitySizer(initial=7 * day, target_calls=2000, workers=4)
    sizer.observe(Window(START, START + 10 * day), 100)  # 10 a day: the target is 200 days

    assert sizer.next_size(YEARS) == 200 * day
    assert sizer.next_size(800 * day) == 100 * day, "an eighth of what is left"
    assert sizer.next_size(80 * day) == 50 * day, "never below a quarter of the target"


def test_sizer_uses_the_latest_window_seen_whatever_order_results_arrive_in():
    sizer = DensitySizer(initial=datetime.timedelta(days=7), target_calls=100)
    day = datetime.timedelta(days=1)

    sizer.observe(Window(START + 10 * day, START + 20 * day), 1000)  # 100 a day
    sizer.observe(Window(START, START + 10 * day), 10)  # older, arrives later

    assert sizer.next_size(YEARS) == day


def test_sizer_never_plans_less_than_a_second():
    sizer = DensitySizer(initial=datetime.timedelta(days=7), target_calls=1)
    sizer.observe(Window(START, START + datetime.timedelta(seconds=1)), 1_000_000)

    assert sizer.next_size(YEARS) == datetime.timedelta(seconds=1)


# -- the ordered fetcher ------------------------------------------------------------------


class Recorder:
    """A produce() whose tasks take random time, recording how many run at once."""

    def __init__(self, items_per_task: int = 5, seed: int = 1) -> None:
        self.items_per_task = items_per_task
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.started: list[int] = []

    def __call__(self, task: int):
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.started.append(task)
            delays = [self.rng.uniform(0, 0.004) for _ in range(self.items_per_task)]
        try:
            for index, delay in enumerate(delays):
                time.sleep(delay)
                yield (task, index)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_items_come_out_in_task_order_whatever_finishes_first(workers):
    produce = Recorder()

    out = list(OrderedFetcher(range(20), produce, workers=workers, budget=PageBudget(8)))

    expected = []
    for task in range(20):
        expected += [task, *[(task, i) for i in range(5)]]
    assert out == expected
    assert produce.most_running == workers


def test_the_first_task_runs_alone_so_planning_sees_a_result():
    produce = Recorder()
    seen_before_second_task: list[int] = []

    def tasks():
        yield 0
        seen_before_second_task.append(len(produce.started))
        yield from range(1, 6)

    list(OrderedFetcher(tasks(), produce, workers=4, budget=PageBudget(8)))

    assert produce.started[0] == 0
    assert seen_before_second_task == [1]


class CountedItems:
    """Items of `per_task` per task, counted as made; `read_slowly` tells how many were made
    but not yet read at each item a slow writer reads."""

    def __init__(self, per_task: int) -> None:
        self.per_task = per_task
        self.made = 0
        self.lock = threading.Lock()

    def produce(self, task):
        for index in range(self.per_task):
            with self.lock:
                self.made += 1
            yield (task, index)

    def read_slowly(self, fetcher: OrderedFetcher) -> list[int]:
        read, ahead = 0, []
        for item in fetcher:
            if isinstance(item, tuple):
                read += 1
                time.sleep(0.0005)  # a slow writer
                with self.lock:
                    ahead.append(self.made - read)
        assert read == self.made
        return ahead


def test_items_buffered_ahead_of_the_reader_stay_bounded():
    items = CountedItems(per_task=50)
    fetcher = OrderedFetcher(range(8), items.produce, workers=4, budget=PageBudget(10))
    ahead = items.read_slowly(fetcher)
    assert items.made == 8 * 50
    # The head task by the limit of its own, the others by the limit in all, plus the
    # batch the reader holds and an item in each worker's hand.
    assert max(ahead) <= 3 * 10 + 4


def test_fetchers_nested_in_tasks_share_one_bound():
    # Each task read in parts by a fetcher of its own (a dense window split): sharing one
    # budget, they hold what one more fetcher would (each with its own, twice as much).
    items = CountedItems(per_task=30)
    parts_budget = PageBudget(10)

    def in_parts(task):
        parts = OrderedFetcher(range(6), items.produce, workers=4, budget=parts_budget, head_room=2)
        yield from (item for item in parts if isinstance(item, tuple))

    ahead = items.read_slowly(OrderedFetcher(range(4), in_parts, workers=4, budget=PageBudget(10)))
    assert items.made == 4 * 6 * 30
    # Head, others and the reader's batch (10 each), the parts' budget (10), each nested
    # head's room and the batch its passer holds (2 each, 4 of them), and an item in the
    # hand of each of the 16 workers of parts.
    assert max(ahead) <= 4 * 10 + 4 * 2 * 2 + 16


def test_one_long_task_read_slowly_stays_bounded_too():
    # One worker, one window of many pages, a slow writer: the head alone must stay bounded.
    produced = {"n": 0}

    def produce(task):
        for index in range(400):
            produced["n"] += 1
            yield index

    ahead = []
    for consumed, _item in enumerate(
        OrderedFetcher(range(1), produce, workers=1, budget=PageBudget(10)), start=1
    ):
        time.sleep(0.0002)
        ahead.append(produced["n"] - consumed)
    assert len(ahead) == 401, "the task and its 400 items"
    assert max(ahead) <= 2 * 10 + 1


def test_an_error_surfaces_once_after_everything_before_it():
    def produce(task):
        yield (task, "first")
        if task == 3:
            raise RuntimeError("task 3 failed")
        yield (task, "second")

    out: list = []
    with pytest.raises(RuntimeError, match="task 3 failed"):
        out.extend(OrderedFetcher(range(100), produce, workers=4, budget=PageBudget(8)))

    assert out[:9] == [
        0,
        (0, "first"),
        (0, "second"),
        1,
        (1, "first"),
        (1, "second"),
        2,
        (2, "first"),
        (2, "second"),
    ]
    assert out[9:] == [3, (3, "first")], "nothing of task 3's after its error, nothing later"


def test_no_task_starts_once_one_has_failed():
    started = []

    def produce(task):
        started.append(task)
        if task == 2:
            raise ValueError("boom")
        time.sleep(0.01)
        yield task

    with pytest.raises(ValueError, match="boom"):
        list(OrderedFetcher(range(1000), produce, workers=4, budget=PageBudget(4)))

    assert max(started) < 2 + 4 + 1, "at most the tasks already in flight"


def test_leaving_early_stops_and_joins_every_worker():
    before = threading.active_count()

    def produce(task):
        for index in range(1000):
            time.sleep(0.0005)
            yield (task, index)

    fetcher = iter(OrderedFetcher(range(100), produce, workers=4, budget=PageBudget(8)))
    for _ in range(30):
        next(fetcher)
    fetcher.close()  # type: ignore[attr-defined]

    assert threading.active_count() == before


def test_a_page_keeps_the_calls_of_its_window_once_and_counts_strays():
    from tap_amplemarket.streams import WindowFilter

    window = Window(
        datetime.datetime(2026, 4, 1, tzinfo=UTC), datetime.datetime(2026, 4, 2, tzinfo=UTC)
    )
    page = [
        {"id": "in", "start_date": "2026-04-01T12:00:00Z"},
        {"id": "in-offset", "start_date": "2026-04-01T14:00:00+02:00"},
        {"id": "padding", "start_date": "2026-04-02T00:00:00Z"},  # the next window's
        {"id": "stray", "start_date": "2099-01-01T00:00:00Z"},
        {"id": "undated", "start_date": "soon"},
        {"id": "undated", "start_date": "soon"},
        {"id": "bad-in", "start_date": "2026-04-01T25:61:00Z"},  # sorts inside: kept by text
        {"id": "bad-out", "start_date": "2026-13-45T00:00:00Z"},  # sorts outside: once
        {"id": "bad-out", "start_date": "2026-13-45T00:00:00Z"},
        {"id": "garbled", "start_date": "abcdefghijklmnopqrsZ"},
    ]
    belongs = WindowFilter()

    kept = [call["id"] for call in belongs.keep(window, page)]

    assert kept == ["in", "in-offset", "undated", "bad-in", "bad-out", "garbled"], (
        "a call without a usable date once, a stray never"
    )
    assert belongs.outside == 1
    # The same bad date again, in a window its text sorts into: not delivered twice.
    later = Window(
        datetime.datetime(2026, 12, 1, tzinfo=UTC), datetime.datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert belongs.keep(later, [{"id": "bad-out", "start_date": "2026-13-45T00:00:00Z"}]) == []
    assert [line.split(":")[1].strip().split()[0] for line in belongs.summary()] == ["3", "the"]


def test_windows_that_would_run_past_the_last_date_python_knows_stop_at_the_end():
    end = datetime.datetime(9999, 12, 31, tzinfo=UTC)
    huge = datetime.timedelta(days=999_999_999)

    windows = list(plan_windows(START, end, lambda _left: huge))

    assert windows == [Window(up_to_whole_second(START), end)]


def test_a_task_that_cannot_be_planned_fails_in_order_and_ends_the_fetcher():
    def tasks():
        yield 0
        yield 1
        raise OverflowError("date value out of range")

    out: list = []
    with pytest.raises(OverflowError, match="out of range"):
        out.extend(
            OrderedFetcher(tasks(), lambda task: [(task, "page")], workers=1, budget=PageBudget(4))
        )

    assert out == [0, (0, "page"), 1, (1, "page")], "what came before, then the error"
