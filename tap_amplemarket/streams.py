"""The Amplemarket streams; their JSON schemas live in `schemas/`."""

from __future__ import annotations

import datetime
import itertools
import logging
import math
import typing as t

from typing_extensions import override

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.progress import Progress, plural
from tap_amplemarket.timefmt import isoformat_z, parse_timestamp, read_instant
from tap_amplemarket.windows import (
    ONE_SECOND,
    DateWindows,
    DensitySizer,
    OrderedFetcher,
    PageBudget,
    Window,
    plan_windows,
    whole_seconds,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk.helpers.types import Context

#: Where a first sync with neither state nor `start_date` begins.
DEFAULT_START = datetime.datetime(2010, 1, 1, tzinfo=datetime.timezone.utc)
#: Each window's query is padded by this on both sides and records are then placed in
#: exactly one window by their own start_date, whatever the API's bound inclusivity.
BOUNDARY_PAD = datetime.timedelta(seconds=1)
#: Windows aim at this many full pages: few enough calls between checkpoints, and the one
#: partial page that ends each window costs at most 5% more requests.
TARGET_PAGES_PER_WINDOW = 20
#: A window whose first page shows it holds more than this many times the target is split
#: (its first page is read again in the first part: one extra request).
SPLIT_ABOVE_TARGET = 3
#: Fewer calls than this on a first page say too little about density to split on.
SPLIT_MIN_SAMPLE = 20
#: Pages fetched ahead of the one being written, across all concurrent windows.
MAX_PAGES_AHEAD = 48
#: Pages of a window read in parts that wait for the thread passing them on (to a fetcher
#: that holds them in its turn).
NESTED_HEAD_ROOM = 2


def call_time(value: t.Any) -> datetime.datetime | None:
    """A call's start_date as sent, read as the conformer reads it; None if it cannot be
    placed in time."""
    instant = read_instant(value) if isinstance(value, str) else None
    return None if instant is None else instant[0]


class Page(t.NamedTuple):
    """Records the API returned for `window`, in its order; those whose id (as `repr`) is in
    `written` were written already, from a window given up to be split (see CallsStream)."""

    window: Window
    records: list[dict[str, t.Any]]
    written: frozenset[str] = frozenset()


class WindowDone(t.NamedTuple):
    """Every call of `window` has been fetched: after writing them, checkpoint."""

    window: Window
    calls: int
    pages: int


class WindowFilter:
    """Keeps the calls of a page that belong to its window; runs on every call, so fast.

    A call whose start_date cannot be placed is delivered the first time it is seen and
    never again in this run (padded windows may both return it), with its start_date null
    (see conform.py): it moves no bookmark.
    """

    def __init__(self) -> None:
        self.unplaceable: set[str] = set()  # their ids, as text
        #: Calls the API returned outside the (padded) dates asked for: never written.
        self.outside = 0

    def keep(
        self,
        window: Window,
        calls: list[dict[str, t.Any]],
        written: frozenset[str] = frozenset(),
    ) -> list[dict[str, t.Any]]:
        if written:
            calls = [call for call in calls if repr(call.get("id")) not in written]
        lower_z, upper_z = isoformat_z(window.lower), isoformat_z(window.upper)
        kept = []
        for call in calls:
            start_date = call.get("start_date")
            if type(start_date) is str and len(start_date) == 20 and start_date[19] == "Z":
                # The API's usual form sorts as text: no parsing. (A bad date of that shape,
                # "2025-13-45T...Z", that sorts inside the window is kept by its text.)
                if lower_z <= start_date < upper_z:
                    if not self.unplaceable or repr(call.get("id")) not in self.unplaceable:
                        kept.append(call)  # (unless delivered already, as having no date)
                    continue
                if (when := call_time(start_date)) is not None:
                    self._count_if_outside(window, when)
                    continue
            if self._belongs(window, call):  # another form, or not a date at all
                kept.append(call)
        return kept

    def _count_if_outside(self, window: Window, when: datetime.datetime) -> None:
        if not window.lower - BOUNDARY_PAD <= when <= window.upper + BOUNDARY_PAD:
            self.outside += 1

    def _belongs(self, window: Window, call: dict[str, t.Any]) -> bool:
        when = call_time(call.get("start_date"))
        if when is not None:
            inside = window.lower <= when < window.upper
            if not inside:
                self._count_if_outside(window, when)
            return inside
        call.setdefault("start_date", None)  # the SDK's bookmark code reads it unguarded
        key = repr(call.get("id"))  # an id of any type, as text
        if key in self.unplaceable:
            return False
        if call.get("id") is not None:  # else skipped, and counted, as keyless
            self.unplaceable.add(key)
        return True

    def summary(self) -> list[str]:
        """A line on the calls that could not be placed, and on calls out of range, if any."""
        lines = []
        if ids := sorted(self.unplaceable):
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            lines.append(
                f"calls: {len(ids)} call(s) without a usable start_date were delivered once "
                f"each, without moving the bookmark (ids: {shown})"
            )
        if self.outside:
            lines.append(
                f"calls: the API returned {self.outside} call(s) dated outside the window asked "
                "for: each is written only with the window that holds its date (not at all "
                "if that is outside this run's range)"
            )
        return lines


class CallsStream(AmplemarketStream):
    """Calls, synced in ascending date windows with a checkpoint after each.

    /calls lists newest first, which the SDK cannot checkpoint mid-stream. Walking
    [bookmark - lookback, end) in ascending `start_date_from`/`start_date_to` windows makes
    every window boundary a safe resume point, and the lookback picks up calls logged or
    updated after the fact. Windows are sized from the density seen so far, and up to
    `max_concurrent_requests` of them are fetched at once; records are still written
    window after window, in order.
    """

    name = "calls"
    path = "/calls"
    replication_key = "start_date"
    date_windows = DateWindows(
        from_param="start_date_from", to_param="start_date_to", first_window_days=7, lookback_days=3
    )
    #: The newest start_date written so far, and the bookmark of the last checkpoint.
    _newest_written: str | None = None
    _checkpointed: str | None = None

    @property
    def workers(self) -> int:
        """Windows, and parts of a dense window, fetched at once."""
        return int(self.config["max_concurrent_requests"])

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        # The SDK moves the bookmark with every record (no public hook says otherwise); here
        # it moves only at checkpoints (`_checkpoint`): a record only says it was written.
        value = latest_record.get("start_date")
        if value is not None and (self._newest_written is None or value > self._newest_written):
            self._newest_written = value

    def _checkpoint(self, window: Window, context: Context | None) -> None:
        """Every call before `window.upper` is written: move the bookmark up to the newest call
        written, never past that bound (calls of a window given up to be split were written
        early), and emit the STATE."""
        newest = self._newest_written
        if newest is None:
            return
        if parse_timestamp(newest) > window.upper:
            newest = isoformat_z(window.upper)
        if newest == self._checkpointed:
            return
        bookmark = self.get_starting_timestamp(context)  # the last one set, or resumed from
        if bookmark is not None and parse_timestamp(newest) < bookmark:
            return  # a lookback re-read: the bookmark never moves back
        self._checkpointed = newest
        super()._increment_stream_state({self.replication_key: newest}, context=context)
        # The SDK has no public hook to emit a state mid-stream; this one, which it calls
        # internal, promotes the bookmark just set and writes the STATE.
        self.finalize_state_progress_markers()

    def sync_range(self, context: Context | None) -> tuple[datetime.datetime, datetime.datetime]:
        """[start, end) of this run: bookmark minus lookback (or start_date) up to end_date/now."""
        config_start = self.config.get("start_date")
        floor = parse_timestamp(config_start) if config_start else DEFAULT_START
        start = self.get_starting_timestamp(context) or floor
        if self.stream_state.get("replication_key_value"):
            start -= datetime.timedelta(days=self.config["lookback_window_days"])
        start = max(start, floor)
        config_end = self.config.get("end_date")
        end = (
            parse_timestamp(config_end)
            if config_end
            else datetime.datetime.now(datetime.timezone.utc)
        )
        return start, end

    @staticmethod
    def window_query(window: Window) -> dict[str, str]:
        """The API filters of a window, padded: see BOUNDARY_PAD."""
        return {
            "start_date_from": isoformat_z(window.lower - BOUNDARY_PAD),
            "start_date_to": isoformat_z(window.upper + BOUNDARY_PAD),
        }

    @override
    def read_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        start, end = self.sync_range(context)
        self.log("calls: syncing start_date in [%s, %s)", isoformat_z(start), isoformat_z(end))
        page_size = self.page_size or 1
        sizer = DensitySizer(
            initial=datetime.timedelta(days=self.config["window_days"]),
            target_calls=TARGET_PAGES_PER_WINDOW * page_size,
            workers=self.workers,
        )
        # Windows read in parts (see `_split`) share a budget of their own: in the stream's,
        # the windows planned after theirs would hold it, and the parts of the window being
        # written would be read one page at a time.
        parts_budget = PageBudget(MAX_PAGES_AHEAD)
        fetcher = OrderedFetcher(
            plan_windows(start, end, sizer.next_size),
            lambda window: self._fetch_window(window, sizer, parts_budget),
            workers=self.workers,
            budget=PageBudget(MAX_PAGES_AHEAD),
        )
        belongs = WindowFilter()
        progress = Progress(self.stats)
        for item in fetcher:
            if isinstance(item, Page):
                yield from belongs.keep(item.window, item.records, item.written)
                if progress.due():
                    self._log_progress(item.window, end, progress.requests_per_minute())
            elif isinstance(item, WindowDone):
                self._checkpoint(item.window, context)
                self.log(
                    "calls: window [%s, %s) done: %s in %s",
                    isoformat_z(item.window.lower),
                    isoformat_z(item.window.upper),
                    plural(item.calls, "call"),
                    plural(item.pages, "page"),
                )
        for line in belongs.summary():
            self.log("%s", line, level=logging.WARNING)

    def _log_progress(
        self, window: Window, end: datetime.datetime, requests_per_minute: float
    ) -> None:
        self.log(
            "calls: %s written so far; in window [%s, %s); %.0f requests/min; "
            "about %d windows to go, until %s",
            f"{self.stats.records:,}",
            isoformat_z(window.lower),
            isoformat_z(window.upper),
            requests_per_minute,
            math.ceil((end - window.upper) / window.span),
            isoformat_z(end),
        )

    def _fetch_window(
        self,
        window: Window,
        sizer: DensitySizer,
        budget: PageBudget,
        written: frozenset[str] = frozenset(),
        *,
        peel: bool = True,
        splittable: bool = True,
    ) -> Iterator[Page | WindowDone]:
        """The pages of one window (run in a worker thread), then its WindowDone.

        A window far denser than planned (more than SPLIT_ABOVE_TARGET times the target)
        is read instead in windows of its own, in ascending order, so that a checkpoint
        stays a few thousand calls away:
        - seen on its first page (that page is then read again): see `_split`;
        - seen later (a burst the newest calls did not show): once it has given that many
          calls, what is left of it (see `_unread_part`) in windows sized from the density
          seen; calls already written are not written again. What the order of the calls
          read says was read is then read again, last, as one window never split: an order
          that looks newest first proves nothing (an API listing by id, or calls imported
          after the fact, can list a newer call later), and a call lost there is lost for
          good once a checkpoint passes it.
        """
        page_size = self.page_size or 1
        limit = SPLIT_ABOVE_TARGET * sizer.target_calls
        records = iter(self.request_records(self.window_query(window)))
        page = list(itertools.islice(records, page_size))
        if splittable and len(page) == page_size and (covered := self._covered_by(window, page)):
            # A full first page: a first sight of the density, for windows planned now.
            sizer.observe(covered, len(page))
            if len(page) >= SPLIT_MIN_SAMPLE and (window.span / covered.span * len(page) > limit):
                records.close()  # type: ignore[attr-defined]  # a generator
                size = whole_seconds(covered.span * sizer.target_calls / len(page))
                yield from self._split(window, size, sizer.target_calls, budget, written, peel=peel)
                return
        seen: list[tuple[t.Any, t.Any]] = []  # (id, start_date) of each call read
        pages, next_look = 0, limit
        while page:
            seen += [(call.get("id"), call.get("start_date")) for call in page]
            pages += 1
            yield Page(window, page, written)
            # A page far denser than the window was planned for (a burst its first page did
            # not show): what is left is read in windows of its own, several at once, not
            # page after cursor-linked page. Else, after `limit` calls, whatever they say.
            dense = (
                pages > 1 and len(page) == page_size >= SPLIT_MIN_SAMPLE
            ) and self._density_below(window, page, limit)
            if splittable and (dense or len(seen) >= next_look):
                if not dense:
                    next_look += limit  # calls outside the window do not count: look later
                dates = [date for _, date in seen]
                unread = self._unread_part(window, dates, len(page) if dense else limit)
                if unread is not None:
                    records.close()  # type: ignore[attr-defined]  # a generator
                    rest, per_call = unread
                    size = whole_seconds((dense or per_call) * sizer.target_calls)
                    written = written | {repr(call_id) for call_id, _ in seen}
                    yield from self._split(  # no peeling below a part read unpeeled
                        rest, size, sizer.target_calls, budget, written, peel=peel
                    )
                    if rest.upper < window.upper:  # what the order said was read
                        said_read = Window(rest.upper, window.upper)
                        yield from self._fetch_window(
                            said_read, sizer, budget, written, splittable=False
                        )
                    break
            page = list(itertools.islice(records, page_size))
        else:
            sizer.observe(window, self._count_in(window, [date for _, date in seen]))
        yield WindowDone(window, len(seen), max(pages, 1))

    @staticmethod
    def _count_in(window: Window, dates: list[t.Any]) -> int:
        """How many of the start_date `dates` fall in `window`: what sizes the next windows
        (calls from outside it, from an API that did not filter, say nothing of density)."""
        lower_z, upper_z = isoformat_z(window.lower), isoformat_z(window.upper)
        count = 0
        for date in dates:
            if type(date) is str and len(date) == 20 and date[19] == "Z":  # compared as text
                count += lower_z <= date < upper_z
            elif (when := call_time(date)) is not None:
                count += window.lower <= when < window.upper
        return count

    def _split(
        self,
        window: Window,
        size: datetime.timedelta,
        target: int,
        budget: PageBudget,
        written: frozenset[str],
        *,
        peel: bool,
    ) -> Iterator[Page | WindowDone]:
        """`window`, whose newest calls hold `target` calls per `size`, in parts.

        Its newest stretch, a `size` for each worker, is peeled off and read in windows of
        `size`, several at once; what is older is read first, as one window: if that holds
        little (a busy hour after a quiet month), it costs a request or two. If what is older
        turns out dense too, it is read in windows sized from that density (no peeling
        again, which would cost a request for each stretch).
        """
        stretch = size * self.workers
        if peel and stretch < window.span:
            newest = window.upper - stretch
            older = DensitySizer(initial=size, target_calls=target, workers=self.workers)
            older_part = Window(window.lower, newest)
            yield from self._fetch_window(older_part, older, budget, written, peel=False)
            newest_part = Window(newest, window.upper)
            yield from self._fetch_in_parts(newest_part, size, target, budget, written)
        else:
            yield from self._fetch_in_parts(window, size, target, budget, written)

    def _fetch_in_parts(
        self,
        window: Window,
        size: datetime.timedelta,
        target: int,
        budget: PageBudget,
        written: frozenset[str],
    ) -> Iterator[Page | WindowDone]:
        """`window` in ascending windows, the first `size` long, each next one sized from
        what the last one held (empty ones grow fourfold): a dense stretch in a long window
        costs a few requests more, not one per `size` of it. They are fetched as the
        stream's windows are, several at once (requests in flight stay bounded by
        `in_flight`), and handed on in order; their pages count against `budget`, shared
        by every window read in parts, so that memory stays bounded however many there are."""
        # Windows of the target throughout: shrinking them to keep every worker busy to the
        # end of this stretch, as the stream's own plan does at its end, would cost a
        # partial page each.
        sizer = DensitySizer(initial=size, target_calls=target)
        parts = OrderedFetcher(
            plan_windows(window.lower, window.upper, sizer.next_size),
            lambda part: self._fetch_window(part, sizer, budget, written),
            workers=self.workers,
            budget=budget,
            head_room=NESTED_HEAD_ROOM,
        )
        yield from (item for item in parts if isinstance(item, (Page, WindowDone)))

    @staticmethod
    def _density_below(
        window: Window, page: list[dict[str, t.Any]], limit: int
    ) -> datetime.timedelta | None:
        """The time per call of `page`, if at that density what of `window` is older than
        the page would hold more than `limit` calls (read from the API's usual date form
        only, as text: this runs on every page)."""
        texts = [
            date
            for call in page
            if type(date := call.get("start_date")) is str and len(date) == 20 and date[19] == "Z"
        ]
        if len(texts) < len(page) // 2:
            return None
        oldest, newest = call_time(min(texts)), call_time(max(texts))
        if oldest is None or newest is None or not window.lower <= oldest <= newest:
            return None
        per_call = max(newest - oldest, ONE_SECOND) / len(texts)
        return per_call if (oldest - window.lower) / per_call > limit else None

    @staticmethod
    def _unread_part(
        window: Window, dates: list[t.Any], minimum: int
    ) -> tuple[Window, datetime.timedelta] | None:
        """What of `window` may hold calls not yet read, given the start_date `dates` of
        those read, and the time per call among them; None if fewer than `minimum` of them
        are in the window, or it cannot be parted.

        The API lists newest first: if the calls read came in that order (and span more
        than a second), what is older than the oldest (its second included) is what is
        left to read in parts (the caller then reads the rest again, as one window). If
        they did not, the whole window is read again.
        """
        times = [
            when
            for when in map(call_time, dates)
            if when is not None and window.lower <= when < window.upper
        ]
        if window.span <= ONE_SECOND or not times or len(times) < minimum:
            return None
        # Calls of one second are in every order at once: no evidence of newest first.
        newest_first = max(times) - min(times) >= ONE_SECOND and all(
            newer >= older for newer, older in itertools.pairwise(times)
        )
        oldest = min(times)
        upper = oldest.replace(microsecond=0) + ONE_SECOND if newest_first else window.upper
        per_call = max(max(times) - oldest, ONE_SECOND) / len(times)
        return Window(window.lower, min(upper, window.upper)), per_call

    @staticmethod
    def _covered_by(window: Window, page: list[dict[str, t.Any]]) -> Window | None:
        """The part of `window` a first page of its newest calls spans, if any: none if the
        page holds calls from outside the window (the API did not filter by date there, so
        neither its density nor a split of the window means anything)."""
        times = [when for when in map(call_time, (c.get("start_date") for c in page)) if when]
        if not times or not (
            window.lower - BOUNDARY_PAD <= min(times) and max(times) <= window.upper + BOUNDARY_PAD
        ):
            return None
        oldest = max(min(times), window.lower).replace(microsecond=0)
        return Window(oldest, window.upper) if oldest < window.upper else None


class DispositionsStream(AmplemarketStream):
    """Call dispositions (`action`: complete | next_stage); a small, full-table list."""

    name = "dispositions"
    path = "/calls/dispositions"
    max_page_size = None


class UsersStream(AmplemarketStream):
    """Users of the Amplemarket account; parent of `tasks`."""

    name = "users"
    path = "/users"
    child_context_key = "user_id"


class TasksStream(AmplemarketStream):
    """Tasks, one partition per user: /tasks requires `user_id`."""

    name = "tasks"
    path = "/tasks"
    parent_stream_type = UsersStream
    state_partitioning_keys: t.ClassVar[list[str]] = []  # full table: no per-user state to keep


class SequencesStream(AmplemarketStream):
    """Sequences (ids are 40 hex characters, not uuids)."""

    name = "sequences"
    path = "/sequences"


class MailboxesStream(AmplemarketStream):
    """Mailboxes connected to the account; the endpoint pages at most 20 at a time."""

    name = "mailboxes"
    path = "/mailboxes"
    max_page_size = 20


class LeadListsStream(AmplemarketStream):
    """Lead lists; parent of `lead_list_entries`."""

    name = "lead_lists"
    path = "/lead-lists"
    ignored_fields = ("leads",)  # loaded into lead_list_entries
    child_context_key = "lead_list_id"


class LeadListEntriesStream(AmplemarketStream):
    """The leads of each lead list: GET /lead-lists/{id} pages its `leads` by entry id."""

    name = "lead_list_entries"
    path = "/lead-lists/{lead_list_id}"
    records_key = "leads"
    primary_keys = ("lead_list_id", "id")
    parent_stream_type = LeadListsStream
    state_partitioning_keys: t.ClassVar[list[str]] = []

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        # The entry does not name its list; the SDK adds context keys only to partitioned state.
        row["lead_list_id"] = (context or {}).get("lead_list_id")
        return super().post_process(row, context)


class ExcludedDomainsStream(AmplemarketStream):
    """Domains excluded from outreach."""

    name = "excluded_domains"
    path = "/excluded-domains"
    primary_keys = ("domain",)


class ExcludedEmailsStream(AmplemarketStream):
    """Email addresses excluded from outreach."""

    name = "excluded_emails"
    path = "/excluded-emails"
    primary_keys = ("email",)


class AccountsStream(AmplemarketStream):
    """Accounts (companies) known to Amplemarket."""

    name = "accounts"
    path = "/accounts"
