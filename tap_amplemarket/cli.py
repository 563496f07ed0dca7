"""The `tap-amplemarket` command line: errors a person can fix end in one line, not a traceback."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import typing as t

from tap_amplemarket import sdk_logs
from tap_amplemarket.errors import UnreadableFileError, failure_message, read_json_file
from tap_amplemarket.tap import TapAmplemarket
from tap_amplemarket.writer import Interrupted, checked_output


def flag_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` in `argv` (`--flag value` or `--flag=value`)."""
    values = [value for name, value in itertools.pairwise(argv) if name == flag]
    return values + [arg.removeprefix(f"{flag}=") for arg in argv if arg.startswith(f"{flag}=")]


#: The files the command line reads, and what to do when one cannot be used.
FILE_ARGUMENTS = {
    "--config": ("config", "pass a JSON object of settings (see --about)"),
    "--state": ("state", "pass a state a previous run emitted, or none for a full sync"),
}


def file_argument_error(argv: list[str]) -> str | None:
    """Why a `--config` or `--state` file in `argv` cannot be read as a JSON object, if one
    cannot: the SDK would end in a traceback."""
    for flag, (what, fix) in FILE_ARGUMENTS.items():
        for path in flag_values(argv, flag):
            if flag == "--config" and path == "ENV":  # settings from the environment
                continue
            try:
                value = read_json_file(path, what, fix)
            except UnreadableFileError as exc:
                return str(exc)
            if not isinstance(value, dict):
                kind = type(value).__name__
                return f"The {what} file {path} holds {kind}, not a JSON object: {fix}"
    return None


def exit_now(code: int) -> t.NoReturn:
    """Exit with `code` once what is written is flushed, without joining threads: a signal's
    exception can leave a lock held that a worker thread waits on (in a window's Future),
    and the interpreter's exit would wait for that thread for ever."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main() -> None:
    """Console entry point: errors a person can fix end in one line, not a traceback."""
    sdk_logs.quiet(TapAmplemarket.logger)  # where the CLI logs config errors
    if message := file_argument_error(sys.argv[1:]):
        TapAmplemarket.logger.error("%s", message)
        sys.exit(1)
    try:
        with checked_output():
            TapAmplemarket.cli()
    except Interrupted as interrupted:
        TapAmplemarket.logger.error(
            "Interrupted by %s: the next run resumes from the last STATE emitted",
            interrupted.signal_name,
        )
        exit_now(interrupted.exit_code)
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            TapAmplemarket.logger.critical("Unexpected error", exc_info=True)
        else:
            TapAmplemarket.logger.error("%s", message)
        sys.exit(1)


if __name__ == "__main__":
    main()
