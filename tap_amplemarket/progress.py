"""What a sync has done so far, for the progress lines and the summary of each stream."""

from __future__ import annotations

import dataclasses
import threading
import time
import typing as t

from tap_amplemarket.secrets import redacted

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: How often a long read says how far it has come.
PROGRESS_SECONDS = 10.0


@dataclasses.dataclass
class StreamStats:
    """Counts for one stream, updated from any worker thread."""

    records: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited_seconds: float = 0.0
    started: float | None = None
    finished: float | None = None
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: float) -> None:
        """Add each of `counts` to the count of that name."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def start(self) -> None:
        """Note when the stream started, the first time only."""
        if self.started is None:
            self.started = time.monotonic()

    def finish(self) -> None:
        """Note when the stream finished."""
        self.finished = time.monotonic()

    def summary(self) -> str:
        """The stream's cost line: records, requests, retries, rate-limited time, seconds."""
        seconds = (self.finished or time.monotonic()) - (self.started or time.monotonic())
        waits = (
            f", rate-limited {self.rate_limited_seconds:.0f} s" if self.rate_limited_seconds else ""
        )
        return (
            f"{plural(self.records, 'record')}, {plural(self.requests, 'request')} "
            f"({self.retries:,} retried{waits}), {seconds:.1f} s"
        )


class RunTally:
    """Every stream's counts in one run, and their total once each stream has logged its own."""

    def __init__(self) -> None:
        """Start with no stream."""
        self.streams: list[StreamStats] = []
        self._logged = 0

    def add(self, stats: StreamStats) -> None:
        """Count `stats` in the run's total."""
        self.streams.append(stats)

    def total_after_one(self) -> str | None:
        """After a stream's own cost line: the run's total, if every stream has logged."""
        self._logged += 1
        if self._logged != len(self.streams):
            return None
        started = [s.started for s in self.streams if s.started is not None]
        seconds = time.monotonic() - min(started, default=time.monotonic())
        return f"{plural(sum(s.records for s in self.streams), 'record')} in {seconds:.1f} s"


def estimate_left(elapsed: float, done: float, left: float) -> float | None:
    """Seconds left at the pace so far; None before any is done.

    `done` seconds of the range were read in `elapsed`, `left` to go. It falls as the range is
    read at a steady pace, however windows are cut.
    """
    return elapsed * left / done if done > 0 else None


def duration(seconds: float) -> str:
    """`seconds` for a log line: in seconds under two minutes, else in minutes."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def plural(count: int, noun: str) -> str:
    """`count` (with thousands separators) and `noun`, in the plural unless it is 1."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def partition_name(context: Context | None) -> str:
    """A partition as a log line names it: `[user_id=...]`, or "" for a whole stream."""
    if not context:
        return ""
    return redacted(f"[{', '.join(f'{k}={v}' for k, v in context.items())}]")
