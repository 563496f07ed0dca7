"""A stream that, once read whole, has its target mark deleted what the run did not see.

ACTIVATE_VERSION tells a target that the rows of this stream's earlier versions, not seen
in this run, are gone from the source: it marks them deleted (or removes them). Sent only
once every partition has been read to its end: sent early, or after a read cut short, it
would mark deleted rows that merely were not read yet.
"""

from __future__ import annotations

import inspect
import logging
import typing as t

from singer_sdk import RESTStream
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk import Tap


_TToken = t.TypeVar("_TToken")


class DeletionMarkingStream(RESTStream[_TToken]):
    """A REST stream whose ACTIVATE_VERSION waits for `end_read`, and is sent only if whole."""

    def __init__(self, tap: Tap) -> None:
        """A stream of `tap`, not read yet."""
        super().__init__(tap)
        #: Whether the key's plan lacks the endpoint (its skip has a warning of its own).
        self.endpoint_unavailable = False
        #: Why this run has not read every record of the stream, once it has not (a
        #: partition skipped or cut short): then it must not have a target drop any row.
        self.incomplete_reason: str | None = None
        #: Told once the stream's read ends (end_read), `incomplete_reason` then saying
        #: whether whole: the Airbyte source reports the stream's status from it.
        self.on_read_end: Callable[[DeletionMarkingStream[t.Any]], None] | None = None

    @property
    def marks_deletions(self) -> bool:
        """Whether a run that reads this stream whole ends it with ACTIVATE_VERSION.

        A target then marks deleted (or removes) the rows that run did not see.

        Only a selected full-table stream, with emit_activate_version_messages on; never
        one whose class declares a replication key (calls: a run reads from the bookmark
        or start_date, whatever a catalog says), nor under BATCH (its last BATCH message
        comes after the read ends, and would land after the rows it holds were dropped).
        """
        return bool(
            self.selected
            and self.emit_activate_version_messages
            and self.replication_method == REPLICATION_FULL_TABLE
            and not isinstance(inspect.getattr_static(type(self), "replication_key"), str)
            and not self.get_batch_config(self.config)
        )

    @override
    def _write_activate_version_message(self, full_table_version: int) -> None:
        # The SDK sends it as a stream starts, before any record: a target then drops every
        # row this run has not read yet, and a run that stops part-way leaves them dropped.
        # It is sent by `end_read` instead, once the stream has been read to its end.
        pass

    def end_read(self) -> None:
        """Every partition of this stream has been read: tell the target so.

        A child's partitions are those of every parent listed. The target is not told if a
        partition was skipped or cut short. Then the same for each child stream, whose parents
        are all listed only if this stream was read whole.
        """
        if self.on_read_end is not None:
            self.on_read_end(self)
        if self.incomplete_reason is not None:
            if self.marks_deletions and not self.endpoint_unavailable:  # that has its warning
                self.log(
                    "%s: rows deleted in Amplemarket are not marked this run, as %s: the "
                    "next run that reads it whole marks them",
                    self.name,
                    self.incomplete_reason,
                    level=logging.WARNING,
                )
        elif self.marks_deletions:
            if self._stream_version is None:
                # A child stream without a parent: the SDK never started it, yet it is
                # read whole (nothing). Its SCHEMA and version, as the SDK's sync() makes them.
                self._write_schema_message()
                self._stream_version = self._initialized_at // 1000
            super()._write_activate_version_message(self._stream_version)
        for child in self.child_streams:
            if isinstance(child, DeletionMarkingStream):
                if self.incomplete_reason is not None and child.incomplete_reason is None:
                    child.incomplete_reason = f"its parent stream {self.name} was not read whole"
                child.end_read()
