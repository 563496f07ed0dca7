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
    MaxRecordsLimitException,
)
from typing_extensions import override


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
    """That an unsorted stream cannot resume (date windows make calls resumable), and that a
    record without a start_date moves no bookmark (delivered on purpose, warned about once
    when it is conformed)."""
    return record.funcName == "increment_state" and record.levelno == logging.WARNING


class SdkNoiseFilter(logging.Filter):
    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_dry_run_stop(record) or _state_helper_warning(record))


NOISE = SdkNoiseFilter()


def quiet(logger: logging.Logger) -> None:
    """Drop the SDK's misleading lines from `logger` (a stream's, or the SDK's own)."""
    if NOISE not in logger.filters:
        logger.addFilter(NOISE)
