"""A stream read in date windows (windows.py): its range, its fetch and its bookmark."""

from __future__ import annotations

import datetime
import typing as t

from tap_amplemarket.timefmt import format_datetime, parse_timestamp, read_instant
from tap_amplemarket.windows import DEFAULT_START, TARGET_PAGES, Plan, Window, read_in_windows

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from tap_amplemarket.windows import DateWindows


class WindowedStream(t.Protocol):
    """What a date-windowed read needs of its stream (an AmplemarketStream, for the SDK's)."""

    name: str
    date_windows: t.ClassVar[DateWindows | None]

    @property
    def config(self) -> Mapping[str, t.Any]:
        """The tap's settings."""

    @property
    def replication_key(self) -> str | None:
        """The record field the bookmark is of."""

    @property
    def stream_state(self) -> dict[str, t.Any]:
        """The stream's state: where its bookmark is written."""

    @property
    def page_size(self) -> int | None:
        """Records per page now."""

    def log(self, message: str, *args: t.Any) -> None:
        """Log a line at INFO."""

    def request_records(self, context: t.Any) -> Iterable[dict[str, t.Any]]:
        """The records of one listing (here: one window's query), page after page."""

    def finalize_state_progress_markers(self) -> None:
        """Emit a STATE with the bookmark as set."""


def sync_range(
    stream: WindowedStream,
) -> tuple[datetime.datetime, datetime.datetime, datetime.datetime | None]:
    """[start, end) of this run, and the bookmark resumed from.

    The range runs from the bookmark (else start_date) minus the lookback, up to end_date or
    now.
    """
    assert stream.date_windows is not None
    config = stream.config
    floor = parse_timestamp(config["start_date"]) if config.get("start_date") else DEFAULT_START
    text = stream.stream_state.get("replication_key_value")
    resumed = parse_timestamp(text) if text else None
    lookback = int(config.get("lookback_window_days", stream.date_windows.lookback_days))
    start = max(floor, resumed) if resumed else floor
    end_date = config.get("end_date")
    end = parse_timestamp(end_date) if end_date else datetime.datetime.now(datetime.timezone.utc)
    return start - datetime.timedelta(days=lookback), end, resumed


def read_windowed(stream: WindowedStream) -> Iterator[dict[str, t.Any]]:
    """The records of a date-windowed stream, checkpointed (see windows.py)."""
    spec, key = stream.date_windows, stream.replication_key
    assert spec is not None
    assert key is not None
    start, end, resumed = sync_range(stream)
    stream.log("%s: syncing %s in [%s, %s)", stream.name, key, start, end)
    bookmark = [resumed]

    def date_of(record: dict[str, t.Any]) -> datetime.datetime | None:
        value = record.setdefault(key, None)  # the SDK's state code reads it
        instant = read_instant(value) if isinstance(value, str) else None
        return None if instant is None else instant[0]

    def checkpoint(upper: datetime.datetime) -> None:
        """Every window before `upper` is read and its records written: write a STATE.

        The target then commits them. The bookmark never moves back (a lookback re-reads).
        """
        moved = bookmark[0] is None or upper > bookmark[0]
        bookmark[0] = upper if moved else bookmark[0]
        state = stream.stream_state
        # Always: the SDK set it from each record written (see AmplemarketStream.is_sorted).
        state["replication_key"] = key
        state["replication_key_value"] = format_datetime(t.cast("datetime.datetime", bookmark[0]))
        if moved:
            # The SDK's only way to emit a STATE mid-stream; a public name it calls internal.
            stream.finalize_state_progress_markers()

    def fetch(window: Window) -> Iterator[dict[str, t.Any]]:
        return iter(stream.request_records(dict(window.query(spec))))

    plan = Plan(
        start=start,
        end=end,
        first_span=datetime.timedelta(
            days=int(stream.config.get("window_days", spec.first_window_days))
        ),
        target=TARGET_PAGES * (stream.page_size or 1),
        workers=int(stream.config["max_concurrent_requests"]),
        fetch=fetch,
        date_of=date_of,
        checkpoint=checkpoint,
        log=lambda line: stream.log("%s: %s", stream.name, line),
    )
    yield from read_in_windows(plan)
