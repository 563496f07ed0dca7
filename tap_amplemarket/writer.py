"""Singer message output: msgspec encoding, flushed at checkpoints rather than per record."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class CheckpointFlushingWriter(MsgSpecWriter):
    """Buffers RECORD messages and flushes on every other message (STATE, SCHEMA, ...).

    The SDK writer flushes after each record: one write syscall per record into the
    target's pipe. Flushing at STATE messages loses nothing a target could act on: a
    record still buffered at a crash is one the emitted state does not cover yet.
    """

    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.buffer.flush()
