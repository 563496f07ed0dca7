"""Singer output: msgspec-encoded, RECORDs gathered into large writes.

Everything is flushed at each other message (SCHEMA, STATE, ...) and at exit; SIGTERM and
SIGINT end the run between writes, never inside one.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import select
import signal
import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_amplemarket.errors import AmplemarketError

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.singerlib.encoding.simple import Message

CHUNK_BYTES = 1 << 16


class Interrupted(BaseException):  # like KeyboardInterrupt: not an Exception
    """SIGTERM or SIGINT arrived: the run stops, and says so in its exit code."""

    def __init__(self, signum: int) -> None:
        """Built from the signal's number; the exit code is 128 plus it, as shells report."""
        super().__init__(signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum


class OutputError(AmplemarketError):
    """stdout cannot be written: the target closed its end, or the disk is full."""


def output_failure(exc: OSError) -> OutputError:
    """The one line for `exc`, raised writing stdout; stdout then goes to /dev/null.

    So that nothing left in its buffers fails again at exit (a traceback Python prints
    itself).
    """
    with open(os.devnull, "wb") as devnull, contextlib.suppress(OSError, ValueError):
        os.dup2(devnull.fileno(), sys.stdout.fileno())  # no fileno: not a real stdout
    resume = "the next run resumes from the last STATE the target saved"
    if exc.errno == errno.EPIPE:
        msg = f"The target stopped reading the tap's output (stdout closed): see its log; {resume}"
    elif exc.errno in {errno.ENOSPC, errno.EDQUOT}:
        msg = f"No space left where the tap's output (stdout) is written: free some; {resume}"
    else:
        msg = f"Cannot write the tap's output (stdout): {exc.strerror}; {resume}"
    return OutputError(msg)


#: What a write to stdout fails with when it cannot succeed: the reader has gone, the disk
#: is full (the tap writes no file of its own).
OUTPUT_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT})


def _flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except OSError as exc:
        raise output_failure(exc) from None


def _reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader has closed it."""
    try:
        poller = select.poll()
        poller.register(sys.__stdout__ or sys.stdout, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() (Windows), or no stdout
        return False


@contextlib.contextmanager
def checked_output() -> Iterator[None]:
    """Run the block, then flush stdout, where Python would only print a traceback at exit.

    A write to stdout that fails (a `print` of the SDK's too) raises OutputError.
    """
    try:
        yield
        _flush_stdout()
    except SystemExit as done:
        if done.code and _reader_gone():  # click's main exits 1 on EPIPE, saying nothing
            raise output_failure(BrokenPipeError(errno.EPIPE, "Broken pipe")) from None
        _flush_stdout()
        raise
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        raise output_failure(exc) from None


class CheckpointFlushingWriter(MsgSpecWriter):
    """Collects RECORD lines into 64 KiB writes; flushes with each other message (STATE, ...).

    The SDK writer flushes after each record: one write syscall per record into the
    target's pipe. Flushing at STATE messages loses nothing a target could act on: a
    record still pending at a crash is one the emitted state does not cover yet.

    A signal never cuts a line in half: one that arrives during a write is raised after it.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Built as the SDK's writer is; what is still pending at exit is flushed then."""
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        self._writing = False
        self._signal: int | None = None
        self._broken = False  # stdout failed: nothing more can be written
        atexit.register(self._flush_at_exit)

    @override
    def write_message(self, message: Message) -> None:
        self._pending += self.format_message(message)
        if len(self._pending) >= CHUNK_BYTES or not isinstance(message, RecordMessage):
            self.flush()

    def flush(self) -> None:
        """Write out the pending lines; then raise Interrupted for a signal that came meanwhile.

        Flushes stdout too. Once stdout has failed, pending lines are dropped: nothing more can
        be written.
        """
        if self._broken:
            self._pending.clear()
            return
        self._writing = True
        try:
            if self._pending:
                sys.stdout.buffer.write(self._pending)
                self._pending.clear()
            sys.stdout.buffer.flush()
        except OSError as exc:
            self._broken = True
            self._pending.clear()
            raise output_failure(exc) from None
        finally:
            self._writing = False
        if self._signal is not None:
            signum, self._signal = self._signal, None
            raise Interrupted(signum)

    def _flush_at_exit(self) -> None:
        # Normally a no-op (entry points flush before exit); a failure here says one line.
        try:
            self.flush()
        except OutputError as exc:
            sys.stderr.write(f"{exc}\n")

    def interrupt(self, signum: int) -> None:
        """Stop the run with Interrupted: now, or after the write under way."""
        if self._writing:
            self._signal = signum
        else:
            raise Interrupted(signum)
