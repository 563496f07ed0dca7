"""Date windows: how a date-filtered stream (calls) is read so that no record is lost.

A stream says how in `date_windows` (its filter parameters, first window, lookback). Its run
covers [bookmark - lookback, end) in contiguous windows, and each window is atomic:
- it is read whole, page after page through its next links, before any of it is written;
- a window that passes PAGE_BOUND pages is dropped, nothing of it written, and read again in
  parts (`split`);
- its records are placed by their parsed start_date: a record belongs to the one window that
  holds that instant, whatever the API's order or the inclusivity of its bounds (each query
  is padded by a second on both sides); one without a usable date is written once per run;
- windows are written in order, each sorted by start_date and followed by its checkpoint.

Up to `max_concurrent_requests` windows are read at once by a thread pool; at most twice as
many wait to be written (and the parts of a dropped window), each at most PAGE_BOUND pages:
memory is bounded whatever the history.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime
import itertools
import logging
import math
import threading
import typing as t

from tap_amplemarket.progress import Progress, plural
from tap_amplemarket.timefmt import format_datetime, isoformat_z, parse_timestamp, read_instant

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk.helpers.types import Context

    from tap_amplemarket.client import AmplemarketStream

ONE_SECOND = datetime.timedelta(seconds=1)
#: How much wider than its window a window's query is on each side (see `Window.query`).
QUERY_PAD = ONE_SECOND
#: Where a first sync with neither state nor `start_date` begins.
DEFAULT_START = datetime.datetime(2010, 1, 1, tzinfo=datetime.timezone.utc)
#: Windows aim at this many full pages: the one partial page ending each costs 5% at most.
TARGET_PAGES = 20
#: A window with more pages than this is dropped and read again in parts: what bounds memory
#: and the records between two checkpoints.
PAGE_BOUND = 2 * TARGET_PAGES
#: How long a run that stops early waits for the windows still being read (a request, or a
#: retry's wait, is not cut short).
STOP_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class DateWindows:
    """What makes a stream read in date windows (see the module's docstring)."""

    from_param: str  # the query parameter of the earliest start date asked for
    to_param: str  # ... and of the latest
    first_window_days: int  # the first window's span, before any density is known
    lookback_days: int  # each incremental run re-reads this much before the bookmark


class Window(t.NamedTuple):
    """[lower, upper): the records whose start date is at or after lower and before upper."""

    lower: datetime.datetime
    upper: datetime.datetime

    @property
    def span(self) -> datetime.timedelta:
        return self.upper - self.lower

    def holds(self, when: datetime.datetime) -> bool:
        return self.lower <= when < self.upper

    def query(self, spec: DateWindows) -> dict[str, str]:
        """The filters asking for this window, on whole seconds, a second wider on each side:
        the API's bounds may be inclusive or not, and placement decides (`holds`)."""
        lower = self.lower.replace(microsecond=0) - QUERY_PAD
        upper = self.upper.replace(microsecond=0) + QUERY_PAD
        upper += ONE_SECOND if self.upper.microsecond else datetime.timedelta(0)  # rounded up
        return {spec.from_param: isoformat_z(lower), spec.to_param: isoformat_z(upper)}

    def can_split(self) -> bool:
        """Whether a whole second lies strictly inside: below that, parts ask the same query."""
        return _cut_inside(self, self.lower.replace(microsecond=0) + ONE_SECOND) is not None


def _cut_inside(window: Window, cut: datetime.datetime) -> datetime.datetime | None:
    return cut if window.lower < cut < window.upper else None


class Sizer:
    """Sizes each next window from the latest windows written: `target` records at their
    density (as many of the latest as hold `target`, so that a quiet weekend does not size
    the next window for a quiet year), four times the latest span if all were empty; near
    the end of the range, windows shrink (to half the target at least) so that every worker
    stays busy to the last page. Before any is written, windows are a worker's share of the
    `first` span."""

    def __init__(self, first: datetime.timedelta, target: int, workers: int) -> None:
        self.first, self.target, self.workers = first, target, workers
        self.written: list[tuple[Window, int]] = []  # in order: windows are written so

    def observe(
        self, window: Window, records: int, oldest: datetime.datetime | None = None
    ) -> None:
        """`records` were in `window`, the `oldest` dated so; in the first window holding any,
        history starts there: the density is that of the part from the oldest on."""
        if oldest is not None and not any(count for _, count in self.written):
            window = Window(max(window.lower, oldest), window.upper)
        self.written = [*self.written[-63:], (window, records)]

    def span(self, left: datetime.timedelta) -> float:
        """The next window's span in seconds (a float: years at the density of one record
        would overflow a timedelta)."""
        if not self.written:
            return self.first.total_seconds() / self.workers
        latest, earliest, records = self.written[-1][0], self.written[-1][0], 0
        for window, count in reversed(self.written):
            earliest, records = window, records + count
            if records >= self.target:
                break
        seconds = (latest.upper - earliest.lower).total_seconds()
        if records == 0:
            return latest.span.total_seconds() * 4
        at_density = seconds * self.target / records
        return min(at_density, max(left.total_seconds() / self.workers, at_density / 2))


def plan_windows(
    start: datetime.datetime,
    end: datetime.datetime,
    span: Callable[[datetime.timedelta], float],
) -> Iterator[Window]:
    """Contiguous windows covering [start, end), each `span(what is left)` seconds long in
    whole seconds (one at least), the last cut at `end`: no gap, no overlap, always forward."""
    lower = start
    while lower < end:
        left = end - lower
        seconds = max(1, int(min(span(left), left.total_seconds())))
        upper = min(end, lower + datetime.timedelta(seconds=seconds))
        yield Window(lower, upper)
        lower = upper


def split(window: Window, sample: list[datetime.datetime], target: int) -> list[Window]:
    """`window`, dropped after `sample` (the start dates read of it), cut at whole seconds.

    Where the sample lies, each part holds about `target` of it (a second holding that many
    is a part of its own). Beyond it, where the API's order kept calls from the sample, parts
    start at `target` calls at the sample's density and double outwards: a burst costs a few
    parts more, years of quiet history a few requests. In halves if the sample is empty;
    [] if the window cannot be cut (see `Window.can_split`)."""
    inside = sorted(when for when in sample if window.holds(when))
    middle = (window.lower + window.span / 2).replace(microsecond=0)
    cuts = {middle, middle + ONE_SECOND}  # if the sample offers none
    if inside:
        seconds = [when.replace(microsecond=0) for when in inside]
        crowded = {second for second, n in collections.Counter(seconds).items() if n >= target}
        cuts |= {seconds[i] for i in range(target, len(seconds), target)} | crowded
        cuts |= {second + ONE_SECOND for second in crowded}
        # Beyond each end, the first part spans what the `target` calls nearest that end did.
        edge = min(target, len(seconds)) - 1
        oldest, down = seconds[0], max(ONE_SECOND, seconds[edge] - seconds[0])
        newest, up = seconds[-1] + ONE_SECOND, max(ONE_SECOND, seconds[-1] - seconds[-1 - edge])
        cuts |= {oldest, newest}
        while oldest > window.lower:
            oldest, down = (oldest - down).replace(microsecond=0), down * 2
            cuts.add(oldest)
        while newest < window.upper:
            newest, up = (newest + up).replace(microsecond=0), up * 2
            cuts.add(newest)
    bounds = sorted({window.lower, window.upper} | {c for c in cuts if _cut_inside(window, c)})
    if len(bounds) == 2:
        return []
    return [Window(lower, upper) for lower, upper in itertools.pairwise(bounds)]


def start_date(record: dict[str, t.Any], key: str) -> datetime.datetime | None:
    """A record's start date (its `key`) as an instant, read by the one parser; None if it
    has none that parser reads."""
    value = record.get(key)
    instant = read_instant(value) if isinstance(value, str) else None
    return None if instant is None else instant[0]


@dataclasses.dataclass
class Read:
    """What reading one window gave: its records by start date (sorted), those without a
    usable one, and `dropped` if it passed the page bound (then only the start dates seen)."""

    window: Window
    placed: list[tuple[datetime.datetime, dict[str, t.Any]]]
    unplaced: list[dict[str, t.Any]]
    outside: int = 0  # records dated outside the query: the API did not filter them
    dropped: list[datetime.datetime] | None = None


def read_window(
    stream: AmplemarketStream, window: Window, limit: int | None, stop: threading.Event
) -> Read:
    """Every record of `window` (in a worker thread), or, past `limit` records, what it saw."""
    assert stream.date_windows is not None
    assert stream.replication_key is not None
    key = stream.replication_key
    query = window.query(stream.date_windows)
    low, high = (parse_timestamp(value) for value in query.values())
    read = Read(window, [], [])
    for seen, record in enumerate(stream.request_records(dict(query)), start=1):
        if stop.is_set():
            break
        when = start_date(record, key)
        if when is None:
            read.unplaced.append(record)
        elif window.holds(when):
            read.placed.append((when, record))
        elif not low <= when <= high:
            read.outside += 1
        if limit is not None and seen > limit:
            dates = [when for when, _ in read.placed]
            return Read(window, [], [], dropped=dates)
    read.placed.sort(key=lambda pair: pair[0])
    return read


class Bookmark:
    """The stream's bookmark: the newest start date written, set at each checkpoint, never
    moving back (a lookback re-reads older records)."""

    def __init__(self, stream: AmplemarketStream, resumed: datetime.datetime | None) -> None:
        self.stream = stream
        self.value = resumed
        self.text = stream.stream_state.get("replication_key_value") if resumed else None

    def checkpoint(self, newest: datetime.datetime | None, *, wrote: bool) -> None:
        """Every record of the windows read so far is written (`wrote`: some in the last one,
        the newest dated `newest`): emit a STATE, so that the target commits them."""
        if newest is not None and (self.value is None or newest > self.value):
            self.value, self.text = newest, format_datetime(newest)
        if self.text is None:
            return
        state = self.stream.stream_state
        # Always: the SDK set it from each record written (see AmplemarketStream.is_sorted).
        state["replication_key"] = self.stream.replication_key
        state["replication_key_value"] = self.text
        if wrote:
            # The SDK's only way to emit a STATE mid-stream; a public name it calls internal.
            self.stream.finalize_state_progress_markers()


def sync_range(
    stream: AmplemarketStream, context: Context | None
) -> tuple[datetime.datetime, datetime.datetime, datetime.datetime | None]:
    """[start, end) of this run, and the bookmark resumed from: bookmark minus the lookback
    (or start_date) up to end_date or now."""
    config = stream.config
    floor = parse_timestamp(config["start_date"]) if config.get("start_date") else DEFAULT_START
    resumed = None
    if text := stream.stream_state.get("replication_key_value"):
        resumed = parse_timestamp(text)
    start = floor
    if resumed is not None:
        start = max(floor, resumed - datetime.timedelta(days=lookback_days(stream)))
    end_date = config.get("end_date")
    end = parse_timestamp(end_date) if end_date else datetime.datetime.now(datetime.timezone.utc)
    return start, end, resumed


def first_window_days(stream: AmplemarketStream) -> int:
    assert stream.date_windows is not None
    return int(stream.config.get("window_days", stream.date_windows.first_window_days))


def lookback_days(stream: AmplemarketStream) -> int:
    assert stream.date_windows is not None
    return int(stream.config.get("lookback_window_days", stream.date_windows.lookback_days))


def read_in_windows(
    stream: AmplemarketStream, context: Context | None
) -> Iterator[dict[str, t.Any]]:
    """The records of a date-windowed stream, window after window, checkpointed."""
    start, end, resumed = sync_range(stream, context)
    stream.log("%s: syncing start_date in [%s, %s)", stream.name, start, end)
    workers = int(stream.config["max_concurrent_requests"])
    target = TARGET_PAGES * (stream.page_size or 1)
    sizer = Sizer(datetime.timedelta(days=first_window_days(stream)), target, workers)
    planned = plan_windows(start, end, sizer.span)
    bookmark = Bookmark(stream, resumed)
    delivered_unplaced: set[str] = set()
    outside = 0
    progress = Progress(stream.stats)
    stop = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(workers, f"{stream.name}-window")
    pending: collections.deque[tuple[Window, concurrent.futures.Future[Read]]]
    pending = collections.deque()

    def submit(window: Window, *, first: bool = False, bounded: bool = True) -> None:
        bounded = bounded and window.can_split()
        limit = PAGE_BOUND * (stream.page_size or 1) if bounded else None
        entry = (window, pool.submit(read_window, stream, window, limit, stop))
        pending.appendleft(entry) if first else pending.append(entry)

    try:
        while True:
            # The first window alone: it says what density to plan for, and whether api_url
            # answers at all before a request per worker goes there.
            ahead = 2 * workers if sizer.written else 1
            while len(pending) < ahead and (window := next(planned, None)) is not None:
                submit(window)
            if not pending:
                break
            window, future = pending.popleft()
            read = future.result()
            if read.dropped is not None:
                # At least this dense: the windows planned since, not started yet, are
                # planned again at the new density (pending is in date order, as planned).
                sizer.observe(window, PAGE_BOUND * (stream.page_size or 1))
                unstarted = []
                while pending and pending[-1][1].cancel():
                    unstarted.append(pending.pop()[0])
                if unstarted:
                    planned = plan_windows(unstarted[-1].lower, end, sizer.span)
                parts = split(window, read.dropped, target)
                stream.log(
                    "%s: window [%s, %s) passed %d pages: read again in %d parts",
                    stream.name, isoformat_z(window.lower), isoformat_z(window.upper),
                    PAGE_BOUND, len(parts),
                )  # fmt: skip
                for part in reversed(parts):
                    submit(part, first=True)
                if not parts:  # cannot be cut (never so for a window that can_split)
                    submit(window, first=True, bounded=False)
                continue
            yield from (record for _, record in read.placed)
            wrote = bool(read.placed)
            for record in read.unplaced:
                key = repr(record.get("id"))  # an id of any type, as text
                if key not in delivered_unplaced:
                    if record.get("id") is not None:  # else skipped, and counted, as keyless
                        delivered_unplaced.add(key)
                    assert stream.replication_key is not None
                    record.setdefault(stream.replication_key, None)  # the SDK's state code reads it
                    wrote = True
                    yield record
            outside += read.outside
            sizer.observe(window, len(read.placed), read.placed[0][0] if read.placed else None)
            bookmark.checkpoint(read.placed[-1][0] if read.placed else None, wrote=wrote)
            stream.log(
                "%s: window [%s, %s) done: %s",
                stream.name, isoformat_z(window.lower), isoformat_z(window.upper),
                plural(len(read.placed), "record"),
            )  # fmt: skip
            if progress.due():
                log_progress(stream, window, end, progress.requests_per_minute())
    finally:  # an error, a signal, or the end: what is still running stops at its next page
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        concurrent.futures.wait([future for _, future in pending], timeout=STOP_SECONDS)
    for line in summary(stream.name, delivered_unplaced, outside):
        stream.log("%s", line, level=logging.WARNING)


def log_progress(
    stream: AmplemarketStream, window: Window, end: datetime.datetime, per_minute: float
) -> None:
    stream.log(
        "%s: %s written so far; in window [%s, %s); %.0f requests/min; "
        "about %d windows to go, until %s",
        stream.name,
        f"{stream.stats.records:,}",
        isoformat_z(window.lower),
        isoformat_z(window.upper),
        per_minute,
        math.ceil((end - window.upper) / window.span),
        isoformat_z(end),
    )


def summary(name: str, unplaced: set[str], outside: int) -> list[str]:
    """A line on the records that could not be placed, and on records out of range, if any."""
    lines = []
    if ids := sorted(unplaced):
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        lines.append(
            f"{name}: {len(ids)} record(s) without a usable start_date were delivered once "
            f"each, without moving the bookmark (ids: {shown})"
        )
    if outside:
        lines.append(
            f"{name}: the API returned {outside} record(s) dated outside the window asked "
            "for: each is written only with the window that holds its date (not at all if "
            "that is outside this run's range)"
        )
    return lines
