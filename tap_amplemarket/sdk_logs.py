"""Lines the SDK logs that would mislead about this tap, and the one filter that drops them.

The SDK has no hook to silence them; each is matched by the SDK function that logs it and
its level, never by its text, and each has its why below.
"""

from __future__ import annotations

import logging
import sys

from singer_sdk.exceptions import (
    AbortedSyncFailedException,
    AbortedSyncPausedException,
    ConfigValidationError,
    MaxRecordsLimitException,
)
from typing_extensions import override

from tap_amplemarket.errors import ENDS_IN_ONE_LINE


def _dry_run_stop(record: logging.LogRecord) -> bool:
    """The connection test (a final SDK method) stops each stream by raising at its first
    record, and `Stream.sync` logs that as an ERROR: a passing --test should print none."""
    stopped = sys.exc_info()[1]  # the exception being handled where the line is logged
    return (
        record.levelno == logging.ERROR
        and isinstance(stopped, (AbortedSyncFailedException, AbortedSyncPausedException))
        and isinstance(stopped.__cause__, MaxRecordsLimitException)
    )


def _state_helper_warning(record: logging.LogRecord) -> bool:
    """That a record without a start_date moves no bookmark: delivered on purpose, and
    counted once per run by the date windows (windows.Reader)."""
    return record.funcName == "increment_state" and record.levelno == logging.WARNING


def _worded_elsewhere(record: logging.LogRecord) -> bool:
    """The SDK's own lines about an error the tap ends the run with in one line of its own:
    `Stream.sync`'s "An unhandled error occurred while syncing ..." (once per stream up to
    the parent), and the CLI's "Config validation failed" after the errors it lists; without
    them the run's last line is its cause and fix."""
    failure = sys.exc_info()[1]
    if record.levelno != logging.ERROR or failure is None:
        return False
    if record.funcName == "invoke":  # the CLI's summary, after a line per error
        return isinstance(failure, ConfigValidationError) and hasattr(record, "schema")
    return record.funcName == "log" and isinstance(failure, ENDS_IN_ONE_LINE)


def _discovery_config_warning(record: logging.LogRecord) -> bool:
    """ "Config validation failed", with no reason, when `--discover` runs without a config:
    discovery needs none (a config it cannot use fails the run, named, later)."""
    return record.funcName == "_validate_config" and record.levelno == logging.WARNING


class SdkNoiseFilter(logging.Filter):
    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            _dry_run_stop(record)
            or _state_helper_warning(record)
            or _worded_elsewhere(record)
            or _discovery_config_warning(record)
        )


NOISE = SdkNoiseFilter()


def quiet(logger: logging.Logger) -> None:
    """Drop the SDK's misleading lines from `logger` (a stream's, or the SDK's own)."""
    if NOISE not in logger.filters:
        logger.addFilter(NOISE)
