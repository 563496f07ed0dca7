"""The Amplemarket streams; their JSON schemas live in `schemas/`."""

from __future__ import annotations

import datetime
import logging
import typing as t

from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.conform import normalize_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk.helpers.types import Context

#: Where a first sync with neither state nor `start_date` begins.
DEFAULT_START = datetime.datetime(2010, 1, 1, tzinfo=datetime.timezone.utc)
#: Empty windows double in size up to this, so a long empty history costs few requests.
MAX_EMPTY_WINDOW = datetime.timedelta(days=365)
#: Each window's query is padded by this on both sides and records are then placed in
#: exactly one window by their own start_date, whatever the API's bound inclusivity.
BOUNDARY_PAD = datetime.timedelta(seconds=1)


def parse_timestamp(value: str) -> datetime.datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    # Python 3.10's fromisoformat does not read a trailing "Z".
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def isoformat_z(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class WindowTest:
    """Whether a call's start_date lies in [lower, upper), None where it cannot be placed
    (missing or not a date-time); called once per call, so fast."""

    def __init__(self, lower: datetime.datetime, upper: datetime.datetime) -> None:
        self.lower, self.upper = lower, upper
        self.lower_z, self.upper_z = isoformat_z(lower), isoformat_z(upper)

    def __call__(self, start_date: t.Any) -> bool | None:
        if not isinstance(start_date, str):
            return None
        if len(start_date) == len(self.lower_z) and start_date.endswith("Z"):
            # The API's usual form sorts as text, so no parsing is needed (nor checking: a
            # bad date of this form has its one place too, and is nulled by conform.py).
            return self.lower_z <= start_date < self.upper_z
        normal = normalize_datetime(start_date)
        if normal is None:
            return None
        return self.lower <= parse_timestamp(normal) < self.upper


class _ResumableWindowsFilter(logging.Filter):
    """Drops SDK warnings that windows make moot: "not resumable" (calls checkpoint at every
    window boundary) and, once per call, "replication value is null" (calls without a usable
    start_date are counted in one warning by `CallsStream.get_records`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            "progress is not resumable" in message or "New replication value is null" in message
        )


class CallsStream(AmplemarketStream):
    """Calls, synced in ascending date windows with a checkpoint after each.

    /calls lists newest first, which the SDK cannot checkpoint mid-stream. Walking
    [bookmark - lookback, end) in ascending `start_date_from`/`start_date_to` windows makes
    every window boundary a safe resume point, and the lookback picks up calls logged or
    updated after the fact.
    """

    name = "calls"
    path = "/calls"
    replication_key = "start_date"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.window: tuple[datetime.datetime, datetime.datetime] | None = None
        sdk_logger = logging.getLogger("singer_sdk")
        if not any(isinstance(f, _ResumableWindowsFilter) for f in sdk_logger.filters):
            sdk_logger.addFilter(_ResumableWindowsFilter())

    def sync_range(self, context: Context | None) -> tuple[datetime.datetime, datetime.datetime]:
        """[start, end) of this run: bookmark minus lookback (or start_date) up to end_date/now."""
        config_start = self.config.get("start_date")
        floor = parse_timestamp(config_start) if config_start else DEFAULT_START
        start = self.get_starting_timestamp(context) or floor
        if self.stream_state.get("replication_key_value"):
            start -= datetime.timedelta(days=float(self.config.get("lookback_window_days", 3)))
        start = max(start, floor)
        config_end = self.config.get("end_date")
        end = (
            parse_timestamp(config_end)
            if config_end
            else datetime.datetime.now(datetime.timezone.utc)
        )
        return start, end

    def filter_params(self, context: Context | None) -> dict[str, t.Any]:
        if self.window is None:
            return {}
        lower, upper = self.window
        return {
            "start_date_from": isoformat_z(lower - BOUNDARY_PAD),
            "start_date_to": isoformat_z(upper + BOUNDARY_PAD),
        }

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        start, end = self.sync_range(context)
        # At least a second, so whole-second windows always move forward.
        base_size = max(
            datetime.timedelta(days=float(self.config.get("window_days", 7))),
            datetime.timedelta(seconds=1),
        )
        size = base_size
        self.log("calls: syncing start_date in [%s, %s)", isoformat_z(start), isoformat_z(end))
        # Whole-second bounds, so the text and the parsed comparison of WindowTest agree.
        lower, end = start.replace(microsecond=0), end.replace(microsecond=0)
        unplaceable: set[str] = set()  # calls without a usable start_date, delivered once
        while lower < end:
            upper = min(lower + size, end).replace(microsecond=0)
            self.window = (lower, upper)
            in_window = 0
            in_this_window = WindowTest(lower, upper)
            for record in super().get_records(context):
                placed = in_this_window(record.get("start_date"))
                if placed is None:
                    # No usable start_date: deliver it once per run (overlapping windows may
                    # return it again), its start_date null (conform.py): no bookmark moves.
                    record.setdefault("start_date", None)  # the SDK reads it unguarded
                    call_id = repr(record.get("id"))  # an id of any type, as text
                    if call_id in unplaceable:
                        continue
                    if record.get("id") is not None:  # else skipped, and counted, as keyless
                        unplaceable.add(call_id)
                elif not placed:
                    continue  # padding overlap: this call belongs to the neighbouring window
                in_window += 1
                yield record
            if self.endpoint_unavailable:
                return
            # Every call before `upper` has now been written: checkpoint the bookmark.
            self.finalize_state_progress_markers()
            self.log(
                "calls: window [%s, %s) done, %d calls",
                isoformat_z(lower),
                isoformat_z(upper),
                in_window,
            )
            size = base_size if in_window else min(size * 2, max(MAX_EMPTY_WINDOW, base_size))
            lower = upper
        self.window = None
        if unplaceable:
            self.log(
                "calls: %d call(s) without a usable start_date were delivered once each, "
                "without moving the bookmark (ids: %s)",
                len(unplaceable),
                ", ".join(sorted(unplaceable)[:5]) + (", ..." if len(unplaceable) > 5 else ""),
                level=logging.WARNING,
            )


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

    def filter_params(self, context: Context | None) -> dict[str, t.Any]:
        return {"user_id": context["user_id"]} if context else {}


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
    partition_404_means_deleted = True
    state_partitioning_keys: t.ClassVar[list[str]] = []

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
