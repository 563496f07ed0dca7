"""Singer messages written as Airbyte ones, with the stream statuses the platform needs.

Plain dicts encoded by the Singer writer's msgspec encoder (no pydantic, no airbyte-cdk);
stdout carries only protocol messages, written in the writer's large chunks.
"""

from __future__ import annotations

import time
import typing as t

import msgspec
from singer_sdk.contrib.msgspec import encoder, serialize_jsonl
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage
from typing_extensions import override

from tap_amplemarket.secrets import redacted_strings
from tap_amplemarket.writer import CheckpointFlushingWriter

if t.TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from singer_sdk.singerlib.encoding.simple import Message

    from tap_amplemarket.deletions import DeletionMarkingStream

Json = dict[str, t.Any]

#: The messages that answer `spec`, `check` and `discover`.
ANSWERS = frozenset({"SPEC", "CONNECTION_STATUS", "CATALOG"})
#: A stream's statuses in the order they come; the last, read to its end or not.
STATUS_ORDER = {"STARTED": 0, "RUNNING": 1, "COMPLETE": 2, "INCOMPLETE": 2}


def stream_status_message(name: str, status: str) -> Json:
    """The Airbyte TRACE message that reports stream `name` at `status` now."""
    return {
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": time.time() * 1000,
            "stream_status": {"stream_descriptor": {"name": name}, "status": status},
        },
    }


class AirbyteWriter(CheckpointFlushingWriter):
    """Writes the tap's Singer RECORD and STATE messages as Airbyte messages.

    RECORD keeps the Singer writer's chunked writes; STATE becomes one per-stream STATE for
    each stream whose bookmark changed, and flushes, as in the Singer path. SCHEMA and
    ACTIVATE_VERSION have no Airbyte counterpart: the catalog comes from `discover`.

    Each configured stream gets the statuses the CDK's sources send: STARTED as it starts
    (its SCHEMA), RUNNING at its first record, then COMPLETE once the tap has read it to its
    end (the fact that gates ACTIVATE_VERSION: no `incomplete_reason`), or
    INCOMPLETE: skipped, failed, interrupted or cut short. A destination in Overwrite mode
    replaces a table only for a COMPLETE stream.
    """

    def __init__(self) -> None:
        """Start with no command answered, no configured streams known and no status sent."""
        super().__init__()
        #: The command's answer is written: a signal now stops nothing (see `main`).
        self.answered = False
        #: Streams whose STATE is written: Airbyte expects state only for configured streams.
        self.state_streams: Collection[str] | None = None
        self._last_bookmarks: dict[str, bytes] = {}
        self._statuses: dict[str, str] = {}

    def _status(self, name: str, status: str) -> bytearray:
        """The STREAM_STATUS lines that bring configured stream `name` to `status`.

        STARTED first, never back (a child stream's SCHEMA comes again for each parent).
        """
        sent = self._statuses.get(name)
        configured = self.state_streams is not None and name in self.state_streams
        if not configured or (sent is not None and STATUS_ORDER[sent] >= STATUS_ORDER[status]):
            return bytearray()
        lines = bytearray()
        if sent is None and status != "STARTED":
            lines += serialize_jsonl(stream_status_message(name, "STARTED"))
        self._statuses[name] = status
        return lines + serialize_jsonl(stream_status_message(name, status))

    def stream_read(self, stream: DeletionMarkingStream[t.Any]) -> None:
        """The tap's read of `stream` has ended (`on_read_end`): whole, or not."""
        self._pending += self._status(
            stream.name, "COMPLETE" if stream.incomplete_reason is None else "INCOMPLETE"
        )

    def end_streams(self) -> None:
        """The read is over: a configured stream not read to its end is INCOMPLETE."""
        for name in sorted(self.state_streams or ()):
            self._pending += self._status(name, "INCOMPLETE")

    @override
    def serialize_message(self, message: Message) -> bytearray:
        if isinstance(message, RecordMessage):
            running = bytearray()
            if self._statuses.get(message.stream) != "RUNNING":
                running = self._status(message.stream, "RUNNING")
            return running + serialize_jsonl(
                {
                    "type": "RECORD",
                    "record": {
                        "stream": message.stream,
                        "data": message.record,
                        "emitted_at": time.time_ns() // 1_000_000,
                    },
                }
            )
        if isinstance(message, SchemaMessage):
            return self._status(message.stream, "STARTED")
        if isinstance(message, StateMessage):
            return self._stream_states(message.value or {})
        return bytearray()

    def _stream_states(self, state: Mapping[str, t.Any]) -> bytearray:
        lines = bytearray()
        for name, bookmark in (state.get("bookmarks") or {}).items():
            if self.state_streams is not None and name not in self.state_streams:
                continue
            # Encoded now: the SDK keeps mutating the state dict it handed over.
            encoded = encoder.encode(bookmark)
            if self._last_bookmarks.get(name) == encoded:
                continue
            self._last_bookmarks[name] = encoded
            lines += serialize_jsonl(
                {
                    "type": "STATE",
                    "state": {
                        "type": "STREAM",
                        "stream": {
                            "stream_descriptor": {"name": name},
                            "stream_state": msgspec.Raw(encoded),
                        },
                    },
                }
            )
        return lines

    def emit(self, message: Json) -> None:
        """Write an Airbyte message of our own (SPEC, CATALOG, TRACE, ...) after any pending.

        A TRACE or CONNECTION_STATUS, whose text may quote the API, is written with its
        secrets hidden.
        """
        shown = message if message["type"] in {"SPEC", "CATALOG"} else redacted_strings(message)
        self._pending += serialize_jsonl(shown)
        try:
            self.flush()
        finally:
            self.answered = message["type"] in ANSWERS  # written, even if a signal came
