"""Singer message output: msgspec encoding, written in large chunks and at checkpoints."""

from __future__ import annotations

import atexit
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

CHUNK_BYTES = 1 << 16


class CheckpointFlushingWriter(MsgSpecWriter):
    """Collects RECORD lines into 64 KiB writes; flushes at every other message (STATE, ...).

    The SDK writer flushes after each record: one write syscall per record into the
    target's pipe. Flushing at STATE messages loses nothing a target could act on: a
    record still pending at a crash is one the emitted state does not cover yet.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        atexit.register(self.flush)

    def write_message(self, message: Message) -> None:
        self._pending += self.format_message(message)
        if len(self._pending) >= CHUNK_BYTES or not isinstance(message, RecordMessage):
            self.flush()

    def flush(self) -> None:
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
        sys.stdout.buffer.flush()
