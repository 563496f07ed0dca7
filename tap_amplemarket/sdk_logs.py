"""Lines the SDK logs that would mislead about this tap, and the one filter that drops them.

The SDK has no hook to silence them; each is matched by the SDK function that logs it and
its level, never by its text, and each has its why below.
"""

from __future__ import annotations

import logging
import os
import sys

import singer_sdk
from singer_sdk.exceptions import (
    AbortedSyncFailedException,
    AbortedSyncPausedException,
    ConfigValidationError,
    MaxRecordsLimitException,
)
from typing_extensions import override

from tap_amplemarket.errors import ENDS_IN_ONE_LINE


def _dry_run_stop(record: logging.LogRecord) -> bool:
    """The ERROR `Stream.sync` logs when the connection test stops a stream.

    The connection test (a final SDK method) stops each stream by raising at its first
    record, and `Stream.sync` logs that as an ERROR: a passing --test should print none.
    """
    stopped = sys.exc_info()[1]  # the exception being handled where the line is logged
    return (
        record.levelno == logging.ERROR
        and isinstance(stopped, (AbortedSyncFailedException, AbortedSyncPausedException))
        and isinstance(stopped.__cause__, MaxRecordsLimitException)
    )


def _state_helper_warning(record: logging.LogRecord) -> bool:
    """The warning that a record without a start_date moves no bookmark.

    Such a record is delivered on purpose, and counted once per run by the date windows
    (windows.Reader).
    """
    return record.funcName == "increment_state" and record.levelno == logging.WARNING


def _worded_elsewhere(record: logging.LogRecord) -> bool:
    """The SDK's own lines about an error the tap ends the run with in one line of its own.

    `Stream.sync`'s "An unhandled error occurred while syncing ..." (once per stream up to
    the parent), and the CLI's "Config validation failed" after the errors it lists; without
    them the run's last line is its cause and fix.
    """
    failure = sys.exc_info()[1]
    if record.levelno != logging.ERROR or failure is None:
        return False
    if record.funcName == "invoke":  # the CLI's summary, after a line per error
        return isinstance(failure, ConfigValidationError) and hasattr(record, "schema")
    return record.funcName == "log" and isinstance(failure, ENDS_IN_ONE_LINE)


def _discovery_config_warning(record: logging.LogRecord) -> bool:
    """The warning "Config validation failed", with no reason, when `--discover` has no config.

    Discovery needs none (a config it cannot use fails the run, named, later).
    """
    return record.funcName == "_validate_config" and record.levelno == logging.WARNING


_SDK_DIRECTORY = os.path.dirname(singer_sdk.__file__)
#: The SDK functions whose INFO lines a person reading a run does not need: the env-var
#: notice, each child stream added, each stream and partition begun (one line per user's
#: tasks), the starting bookmark (the calls stream says what it reads); shown at DEBUG.
_CHATTY_SDK_FUNCTIONS = frozenset({"__init__", "load_streams", "write_starting_replication_value"})
_BEGINNING_SYNC = "Beginning sync of "


def _chatter(record: logging.LogRecord) -> bool:
    if record.levelno != logging.INFO or not record.pathname.startswith(_SDK_DIRECTORY):
        return False
    # Stream.sync logs through Stream.log, as the tap's own lines do: its template tells.
    begun = record.funcName == "log" and str(record.msg).startswith(_BEGINNING_SYNC)
    chatty = begun or record.funcName in _CHATTY_SDK_FUNCTIONS
    return chatty and not logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class SdkNoiseFilter(logging.Filter):
    """Drops each SDK line above that would mislead about this tap."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            _chatter(record)
            or _dry_run_stop(record)
            or _state_helper_warning(record)
            or _worded_elsewhere(record)
            or _discovery_config_warning(record)
        )


NOISE = SdkNoiseFilter()


def quiet(logger: logging.Logger) -> None:
    """Drop the SDK's misleading lines from `logger` (a stream's, or the SDK's own)."""
    if NOISE not in logger.filters:
        logger.addFilter(NOISE)


def metrics_level(plugin: str) -> str:
    """The level of the SDK's METRIC lines (`singer_sdk.metrics`, one or more per request).

    WARNING, so that a default run shows none, unless <PLUGIN>_METRICS_LOGLEVEL (e.g.
    TAP_AMPLEMARKET_METRICS_LOGLEVEL=INFO) asks for them (docs/logs.md).
    """
    variable = f"{plugin.upper().replace('-', '_')}_METRICS_LOGLEVEL"
    return os.environ.get(variable, "WARNING").upper()
