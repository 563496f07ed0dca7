"""Date windows for /calls: how they are sized, and how several are fetched at once in order.

- `plan_windows` is the pure part: contiguous whole-second windows covering [start, end).
- `DensitySizer` sizes each next window from the calls per second seen so far, aiming at
  `target_calls` per window (a handful of full pages, then a checkpoint).
- `OrderedFetcher` runs up to N windows' page loops in threads and hands their output to
  the caller strictly in window order, with a bounded number of pages buffered ahead.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

ONE_SECOND = datetime.timedelta(seconds=1)


@dataclasses.dataclass(frozen=True)
class DateWindows:
    """How a stream is read in date windows: the query parameters that bound a window, the
    first window's size, and how far before the bookmark an incremental run starts again."""

    from_param: str
    to_param: str
    first_window_days: int
    lookback_days: int


class Window(t.NamedTuple):
    """[lower, upper): calls whose start_date is at or after lower and before upper."""

    lower: datetime.datetime
    upper: datetime.datetime

    @property
    def span(self) -> datetime.timedelta:
        return self.upper - self.lower


def whole_seconds(value: datetime.timedelta) -> datetime.timedelta:
    """`value` rounded down to whole seconds, and at least one second."""
    return max(ONE_SECOND, datetime.timedelta(seconds=int(value.total_seconds())))


def up_to_whole_second(when: datetime.datetime) -> datetime.datetime:
    """`when`, or the next whole second if it has a fraction. The API's dates are whole
    seconds, so [up(start), up(end)) holds exactly the calls of [start, end)."""
    whole = when.replace(microsecond=0)
    if whole == when:
        return whole
    try:
        return whole + ONE_SECOND
    except OverflowError:  # no second after 9999's last
        return whole


def plan_windows(
    start: datetime.datetime,
    end: datetime.datetime,
    next_size: Callable[[datetime.timedelta], datetime.timedelta],
) -> Iterator[Window]:
    """Contiguous windows covering [start, end) on whole seconds, each `next_size(what is
    left)` long (the last one cut at `end`): no gap, no overlap, always moving forward."""
    lower, end = up_to_whole_second(start), up_to_whole_second(end)
    while lower < end:
        left = end - lower
        upper = lower + min(whole_seconds(next_size(left)), left)  # never past `end`, nor year 9999
        yield Window(lower, upper)
        lower = upper


@dataclasses.dataclass
class DensitySizer:
    """Sizes windows so that each holds about `target_calls` calls.

    - Before anything is seen, windows are `initial` long.
    - After an empty window the next is four times as long: empty history costs few
      requests.
    - Otherwise it holds `target_calls` at the density of the latest window seen (in time).
      Windows planned while others are in flight use what has been seen so far, never a
      guess on a guess.
    - Near the end, windows shrink (to a quarter of the target at least) so that the last
      calls are still fetched by `workers` windows at once.

    Windows that turn out denser than planned are split by the caller (see `CallsStream`):
    a size that is too large costs one request, not a checkpoint-less window of any size.
    """

    initial: datetime.timedelta
    target_calls: int
    workers: int = 1
    _latest: tuple[Window, int] | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def observe(self, window: Window, calls: int) -> None:
        """`calls` calls were found in `window` (thread-safe). A later observation of a
        window ending at the same time (the whole window after its first page) wins."""
        with self._lock:
            if self._latest is None or window.upper >= self._latest[0].upper:
                self._latest = (window, calls)

    def next_size(self, left: datetime.timedelta) -> datetime.timedelta:
        with self._lock:
            latest = self._latest
        if latest is None:
            return whole_seconds(self.initial)
        window, calls = latest
        if calls == 0:
            return whole_seconds(window.span * 4)
        per_call = window.span / calls
        target = per_call * self.target_calls
        share = max(left / (2 * self.workers), target / 4)  # every worker busy to the end
        return whole_seconds(min(target, share))


_END = object()
_UNPLANNED = object()  # the task of a slot whose planning failed
#: How long closing the fetcher waits for workers still inside a request.
JOIN_SECONDS = 5.0


@dataclasses.dataclass
class PageBudget:
    """The items waiting in the slots of one fetcher, and of the fetchers nested in its
    tasks (a window read in parts), which share it: one bound on memory for them all."""

    limit: int
    cond: threading.Condition = dataclasses.field(default_factory=threading.Condition)
    waiting: int = 0


@dataclasses.dataclass
class _Slot:
    """One task and its output, handed over in the order it was produced."""

    index: int
    task: t.Any
    items: list[t.Any] = dataclasses.field(default_factory=list)
    finished: bool = False
    error: BaseException | None = None


class OrderedFetcher:
    """Runs `produce(task)` for up to `workers` tasks at once; yields each task followed by
    its items, task after task, in the order the tasks came.

    - Tasks are drawn lazily from `tasks`, one at a time, so each can be planned from what
      earlier ones found; the first task runs alone until its first item, to give the
      planning a first sight.
    - At most `budget.limit` items of the tasks ahead wait for the caller, and at most
      `head_room` of the task the caller is reading (it may run past the first bound, so
      that it never starves): memory stays flat, however slow the caller. A fetcher run
      inside another's task shares its budget, with little head room: its caller only
      passes items on.
    - An error in a task is raised to the caller when it reaches that task (everything
      before it is delivered first); no further task starts once one has failed.
    - Closing the iterator (or an error in the caller) stops the workers and joins them.
    """

    def __init__(
        self,
        tasks: Iterable[t.Any],
        produce: Callable[[t.Any], Iterable[t.Any]],
        *,
        workers: int,
        budget: PageBudget,
        head_room: int | None = None,
    ) -> None:
        self._tasks = iter(tasks)
        self._produce = produce
        self._workers = workers
        self._budget = budget
        self._head_room = budget.limit if head_room is None else head_room
        self._cond = budget.cond
        self._slots: dict[int, _Slot] = {}
        self._planned = 0
        self._head = 0
        self._no_more_tasks = False
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def __iter__(self) -> Iterator[t.Any]:
        try:
            self._start_worker()
            while True:
                slot = self._slot_at_head()
                if slot is None:
                    return
                if slot.task is not _UNPLANNED:
                    yield slot.task
                for item in self._drain(slot):
                    yield item
                    if len(self._threads) < self._workers:  # planning has a first sight
                        self._start_others()
                self._start_others()
                with self._cond:
                    del self._slots[slot.index]
                    self._head += 1
                    self._cond.notify_all()
        finally:
            self._stop()

    # -- caller side ------------------------------------------------------------------------
    def _slot_at_head(self) -> _Slot | None:
        with self._cond:
            while self._head not in self._slots:
                if self._no_more_tasks and self._head >= self._planned:
                    return None
                self._cond.wait()
            return self._slots[self._head]

    def _drain(self, slot: _Slot) -> Iterator[t.Any]:
        while True:
            with self._cond:
                while not slot.items and not slot.finished:
                    self._cond.wait()
                batch, slot.items = slot.items, []
                self._budget.waiting -= len(batch)
                self._cond.notify_all()
                done = slot.finished and not slot.items
            yield from batch
            if done:
                if slot.error is not None:
                    raise slot.error
                return

    def _start_others(self) -> None:
        while len(self._threads) < self._workers:
            self._start_worker()

    def _stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        until = time.monotonic() + JOIN_SECONDS  # for all of them: a signal's exit waits
        for thread in self._threads:  # daemon threads: one stuck in a request dies at exit
            thread.join(max(0.0, until - time.monotonic()))

    # -- worker side ------------------------------------------------------------------------
    def _start_worker(self) -> None:
        thread = threading.Thread(target=self._work, name="calls-window", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _has_room(self, slot: _Slot) -> bool:
        if slot.index == self._head:
            return len(slot.items) < self._head_room
        return self._budget.waiting < self._budget.limit  # this slot's items among them

    def _plan(self) -> _Slot | None:
        """A slot for the next task, planned now and in order; None when none is left."""
        with self._cond:
            error: BaseException | None = None
            try:
                task = _END if self._stopping or self._no_more_tasks else next(self._tasks, _END)
            except BaseException as exc:  # planning failed: the caller raises it in order
                task, error = _UNPLANNED, exc
            if task is _END:
                self._no_more_tasks = True
                self._cond.notify_all()
                return None
            slot = _Slot(self._planned, task, error=error, finished=error is not None)
            if error is not None:
                self._no_more_tasks = True
            self._slots[slot.index] = slot
            self._planned += 1
            self._cond.notify_all()
            return slot

    def _work(self) -> None:
        while (slot := self._plan()) is not None:
            if slot.finished:  # planning it failed
                return
            try:
                for item in self._produce(slot.task):
                    with self._cond:
                        while not self._stopping and not self._has_room(slot):
                            self._cond.wait()
                        if self._stopping:
                            return
                        slot.items.append(item)
                        self._budget.waiting += 1
                        self._cond.notify_all()
            except BaseException as exc:  # handed to the caller, in order
                with self._cond:
                    slot.error = exc
                    self._no_more_tasks = True
            with self._cond:
                slot.finished = True
                self._cond.notify_all()
