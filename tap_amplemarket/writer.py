"""Singer output: msgspec-encoded, RECORDs gathered into large writes, everything flushed at
each other message (SCHEMA, STATE, ...) and at exit; SIGTERM and SIGINT end the run between
writes, never inside one."""

from __future__ import annotations

import atexit
import signal
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

CHUNK_BYTES = 1 << 16


class Interrupted(BaseException):  # like KeyboardInterrupt: not an Exception
    """SIGTERM or SIGINT arrived: the run stops, and says so in its exit code."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum


class CheckpointFlushingWriter(MsgSpecWriter):
    """Collects RECORD lines into 64 KiB writes; flushes with each other message (STATE, ...).

    The SDK writer flushes after each record: one write syscall per record into the
    target's pipe. Flushing at STATE messages loses nothing a target could act on: a
    record still pending at a crash is one the emitted state does not cover yet.

    A signal never cuts a line in half: one that arrives during a write is raised after it.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        self._writing = False
        self._signal: int | None = None
        atexit.register(self.flush)

    @override
    def write_message(self, message: Message) -> None:
        self._pending += self.format_message(message)
        if len(self._pending) >= CHUNK_BYTES or not isinstance(message, RecordMessage):
            self.flush()

    def flush(self) -> None:
        self._writing = True
        try:
            if self._pending:
                sys.stdout.buffer.write(self._pending)
                self._pending.clear()
            sys.stdout.buffer.flush()
        finally:
            self._writing = False
        if self._signal is not None:
            signum, self._signal = self._signal, None
            raise Interrupted(signum)

    def interrupt(self, signum: int) -> None:
        """Stop the run with Interrupted: now, or after the write under way."""
        if self._writing:
            self._signal = signum
        else:
            raise Interrupted(signum)
