"""Date windows: how a date-filtered stream (calls) is read so that no record is lost.

A run tiles [start, end) with contiguous windows; each window's query is its span on whole
seconds and a second more below, so neighbouring queries overlap by a second. Whatever the
API's bounds mean (inclusive or not, whole days, a time zone, text order), as long as a later
bound never asks for earlier calls, the answers together hold every call the filter places in
the range. Every record of every answer is written as its pages come; the bookmark moves only
to the end of the longest prefix of windows read to their end. docs/windows.md says why.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import queue
import threading
import time
import typing as t

from tap_amplemarket import progress
from tap_amplemarket.errors import AmplemarketError
from tap_amplemarket.progress import duration, estimate_left
from tap_amplemarket.timefmt import isoformat_z

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

Record = dict[str, t.Any]
#: What workers hand the main thread: (window, records | None when read | the error).
Queue = queue.Queue[tuple["Window", "list[Record] | BaseException | None"]]
ONE_SECOND = datetime.timedelta(seconds=1)
#: How much lower than its window a window's query starts (the manifest pads by it too).
QUERY_PAD = ONE_SECOND
#: Where a first sync with neither state nor `start_date` begins.
DEFAULT_START = datetime.datetime(2010, 1, 1, tzinfo=datetime.timezone.utc)
#: Windows aim at this many full pages: the one partial page ending each costs 5% at most.
TARGET_PAGES = 20
#: No reading of a date filter (whole days, a time zone, text order) serves a call further
#: than a day from its query; a call further than this is evidence the filter was ignored.
IGNORED_MARGIN = datetime.timedelta(days=2)
#: Calls that far outside a window, and more of them than inside, stop the run.
IGNORED_EVIDENCE = 20
#: Records a worker hands over at once (a page's worth at the default page size).
CHUNK = 100


class DateFilterIgnoredError(AmplemarketError):
    """The API answered a window with calls dated far outside it: it ignored the filter."""


@dataclasses.dataclass(frozen=True)
class DateWindows:
    """What makes a stream read in date windows (see the module's docstring)."""

    from_param: str  # the query parameter of the earliest start date asked for
    to_param: str  # ... and of the latest
    first_window_days: int  # the first window's span, before any density is known
    lookback_days: int  # each incremental run re-reads this much before the bookmark


class Window(t.NamedTuple):
    """[lower, upper): the calls this window's query must hold whatever its bounds mean."""

    lower: datetime.datetime
    upper: datetime.datetime

    def query(self, spec: DateWindows) -> dict[str, str]:
        """The filters asking for this window: whole seconds, a second more below.

        So the window lies strictly inside its query and overlaps the one before by a second.
        """
        lower = self.lower.replace(microsecond=0) - QUERY_PAD
        upper = self.upper.replace(microsecond=0)
        upper += ONE_SECOND if self.upper.microsecond else datetime.timedelta(0)
        return {spec.from_param: isoformat_z(lower), spec.to_param: isoformat_z(upper)}


class Plan(t.NamedTuple):
    """A run's range, how windows are sized, and what the engine calls."""

    start: datetime.datetime
    end: datetime.datetime
    first_span: datetime.timedelta  # before any density is known
    target: int  # records a window aims at
    workers: int  # windows read at once
    fetch: Callable[[Window], Iterable[Record]]  # a window's records, page after page
    date_of: Callable[[Record], datetime.datetime | None]  # the record's date, if readable
    checkpoint: Callable[[datetime.datetime], None]  # every window before this is read
    log: Callable[[str], None]


class Sizer:
    """Sizes each next window to hold about `target` records at the latest density.

    The density of the latest windows read (as many as hold `target`); four times the latest
    span if all were empty; near the end, windows shrink (to half the target) so that every
    worker stays busy.
    """

    def __init__(self, plan: Plan) -> None:
        """Built from the plan's first span, target and number of workers."""
        self.first, self.target, self.workers = plan.first_span, plan.target, plan.workers
        self.read: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)

    def observe(self, window: Window, records: int) -> None:
        """Note that `window`, now read to its end, held `records`: the density to size by."""
        self.read.append(((window.upper - window.lower).total_seconds(), records))

    def span(self, left: float) -> float:
        """The next window's span, `left` seconds before the end of the run's range.

        In seconds: years at one record a year overflow a timedelta.
        """
        if not self.read:
            return self.first.total_seconds() / self.workers
        seconds = records = 0.0
        for span, count in reversed(self.read):
            seconds, records = seconds + span, records + count
            if records >= self.target:
                break
        if records == 0:
            return self.read[-1][0] * 4
        at_density = seconds * self.target / records
        return min(at_density, max(left / self.workers, at_density / 2))


def _put(out: Queue, item: t.Any, stop: threading.Event) -> bool:
    """Hand `item` to the main thread, unless the run stops first."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def _work(plan: Plan, todo: queue.Queue[Window | None], out: Queue, stop: threading.Event) -> None:
    """A worker thread: reads windows, passing on their records a chunk at a time.

    After a window's last chunk comes None (the window is read to its end), or instead the
    exception that stopped it.
    """
    while (window := todo.get()) is not None:
        chunk: list[Record] = []
        try:
            for record in plan.fetch(window):
                if stop.is_set():  # no page more once the run stops
                    return
                chunk.append(record)
                if len(chunk) == CHUNK:
                    if not _put(out, (window, chunk), stop):
                        return
                    chunk = []
        except Exception as exc:  # handed to the main thread, which raises it
            _put(out, (window, exc), stop)
            return
        if not (_put(out, (window, chunk), stop) and _put(out, (window, None), stop)):
            return


class Reader:
    """One run: plans windows, has workers read them, yields their records as they come.

    It checkpoints past the longest prefix of windows read to their end.
    """

    def __init__(self, plan: Plan) -> None:
        """Built from the run's plan; the workers start when iteration does."""
        self.plan, self.sizer = plan, Sizer(plan)
        self.todo: queue.Queue[Window | None] = queue.Queue()
        self.out: Queue = queue.Queue(maxsize=4 * plan.workers)
        self.stop = threading.Event()
        self.order: collections.deque[Window] = collections.deque()  # planned, not yet passed
        self.seen: dict[Window, list[int]] = {}  # in flight: records, far outside, inside
        self.done: set[Window] = set()
        self.lower, self.records, self.undated = plan.start, 0, 0
        self.started = self.last_report = time.monotonic()
        self.first_dated: datetime.datetime | None = None

    def __iter__(self) -> Iterator[Record]:
        """Every record as the workers hand it over; they stop however iteration ends."""
        for _ in range(self.plan.workers):
            args = (self.plan, self.todo, self.out, self.stop)
            threading.Thread(target=_work, args=args, daemon=True).start()
        try:
            self.submit(1)  # alone: its density sizes the next, and api_url answers first
            while self.seen:
                window, item = self.out.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    self.finish(window)
                else:
                    yield from item
                    self.check(window, item)
        finally:  # the end, an error or a signal: workers stop at their next page
            self.stop.set()
            for _ in range(self.plan.workers):
                self.todo.put(None)
        if self.undated:
            self.plan.log(f"{self.undated:,} record(s) served without a usable date were written")

    def submit(self, windows: int) -> None:
        """Plan and queue windows until `windows` are in flight or the whole range is."""
        while len(self.seen) < windows and self.lower < self.plan.end:
            left = (self.plan.end - self.lower).total_seconds()
            seconds = max(1, int(min(self.sizer.span(left), left)))
            upper = min(self.plan.end, self.lower + datetime.timedelta(seconds=seconds))
            window, self.lower = Window(self.lower, upper), upper
            self.order.append(window)
            self.seen[window] = [0, 0, 0]
            self.todo.put(window)

    def check(self, window: Window, chunk: list[Record]) -> None:
        """Count the chunk; stop if most of the window's calls are dated far outside it."""
        seen = self.seen[window]
        for record in chunk:
            when = self.plan.date_of(record)
            far = when is not None and not (
                window.lower - IGNORED_MARGIN <= when < window.upper + IGNORED_MARGIN
            )
            seen[0], seen[1], seen[2] = seen[0] + 1, seen[1] + far, seen[2] + (not far)
            self.undated += when is None
        self.records += len(chunk)
        if seen[1] >= IGNORED_EVIDENCE and seen[1] > seen[2]:
            msg = (
                f"Amplemarket ignored the date filter of GET /calls: asked for "
                f"[{isoformat_z(window.lower)}, {isoformat_z(window.upper)}), it served "
                f"{seen[1]} calls dated days away: stopped rather than read the whole history "
                "once per window; report it to Amplemarket"
            )
            raise DateFilterIgnoredError(msg)

    def finish(self, window: Window) -> None:
        """`window` is read to its end: size from it, checkpoint past the prefix now read."""
        records = self.seen.pop(window)[0]
        self.sizer.observe(window, records)
        if records and self.first_dated is None:
            self.first_dated = window.lower
        self.done.add(window)
        passed = None
        while self.order and self.order[0] in self.done:
            passed = self.order.popleft()
            self.done.remove(passed)
        if passed is not None:
            self.plan.checkpoint(passed.upper)
            self.report(passed.upper)
        self.submit(self.plan.workers)

    def report(self, frontier: datetime.datetime) -> None:
        """About every PROGRESS_SECONDS, how far the run has come and what is left."""
        now = time.monotonic()
        if now - self.last_report < progress.PROGRESS_SECONDS or frontier >= self.plan.end:
            return
        self.last_report = now
        since = self.first_dated or self.plan.start
        left = estimate_left(
            now - self.started,
            (frontier - since).total_seconds(),
            (self.plan.end - frontier).total_seconds(),
        )
        eta = "" if left is None else f"; about {duration(left)} left at this pace"
        self.plan.log(
            f"{self.records:,} records read; every window read up to {isoformat_z(frontier)} "
            f"of [{isoformat_z(self.plan.start)}, {isoformat_z(self.plan.end)}){eta}"
        )


def read_in_windows(plan: Plan) -> Iterator[Record]:
    """Every record the windows of `plan` are answered with, checkpointed (see Reader)."""
    return iter(Reader(plan))
