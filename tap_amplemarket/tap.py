"""The Amplemarket tap: its settings, their checks, and its streams."""

from __future__ import annotations

import copy
import difflib
import logging
import sys
import typing as t
from functools import cached_property
from urllib.parse import urlparse

import requests
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import (
    AbortedSyncFailedException,
    AbortedSyncPausedException,
    ConfigValidationError,
    MaxRecordsLimitException,
    RetriableAPIError,
)

from tap_amplemarket import streams
from tap_amplemarket.errors import AmplemarketError
from tap_amplemarket.throttle import RequestsPerMinuteLimiter
from tap_amplemarket.writer import CheckpointFlushingWriter

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

STREAM_TYPES: tuple[type[Stream], ...] = (
    streams.CallsStream,
    streams.DispositionsStream,
    streams.UsersStream,
    streams.TasksStream,
    streams.SequencesStream,
    streams.MailboxesStream,
    streams.LeadListsStream,
    streams.LeadListEntriesStream,
    streams.ExcludedDomainsStream,
    streams.ExcludedEmailsStream,
    streams.AccountsStream,
)

DOCUMENTED_RATE_LIMIT = 500  # requests per minute per API key


class TapAmplemarket(Tap):
    """Singer tap for the Amplemarket API."""

    name = "tap-amplemarket"
    message_writer_class = CheckpointFlushingWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            title="API key",
            description="Amplemarket API key, sent as a Bearer token.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default="https://api.amplemarket.com",
            title="API URL",
            description="Base URL of the Amplemarket API.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description=(
                "Earliest call start_date to sync (ISO 8601). Without it a first sync reads all "
                "history."
            ),
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            title="End date",
            description="Sync calls that started before this moment (ISO 8601); default: now.",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=100,
            title="Page size",
            description="Records per request; clamped to each endpoint's maximum (/mailboxes: 20).",
        ),
        th.Property(
            "window_days",
            th.NumberType,
            default=7,
            title="Window days",
            description=(
                "Calls are read in ascending date windows of this many days, with a state "
                "checkpoint after each, so an interrupted sync resumes where it stopped."
            ),
        ),
        th.Property(
            "lookback_window_days",
            th.NumberType,
            default=3,
            title="Lookback window days",
            description=(
                "Each incremental run re-reads this many days before the bookmark, picking up "
                "calls logged late or updated after the fact."
            ),
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType,
            default=400,
            title="Max requests per minute",
            description=(
                f"Client-side request limit; the API allows {DOCUMENTED_RATE_LIMIT} per minute "
                "per key."
            ),
        ),
        th.Property(
            "request_timeout",
            th.IntegerType,
            default=60,
            title="Request timeout",
            description="Seconds to wait for one HTTP response before retrying.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=8,
            title="Max retries",
            description=(
                "Attempts per request on 5xx, timeouts, resets and broken bodies (exponential "
                "backoff). A 429 with Retry-After is always waited out, never counted."
            ),
        ),
        th.Property(
            "user_agent",
            th.StringType,
            title="User agent",
            description="User-Agent header sent with every request.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except ConfigValidationError as exc:
            # JSON Schema messages quote the offending value: never let that be the key.
            config = getattr(self, "_config", {})
            errors = [redact(error, config.get("api_key")) for error in exc.errors]
            errors += unknown_settings(config, self.settings_jsonschema())  # e.g. api_kye
            raise ConfigValidationError(str(exc), errors=errors, schema=exc.schema) from None
        for warning in unknown_settings(self.config, self.settings_jsonschema()):
            self.logger.warning("%s", warning)
        if errors := config_errors(self.config):
            raise ConfigValidationError("Config validation failed", errors=errors)

    @classmethod
    def settings_jsonschema(cls) -> dict[str, t.Any]:
        """Every setting the tap reads, its own and the SDK's built-in ones, as --about lists."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return schema

    @cached_property
    def rate_limiter(self) -> RequestsPerMinuteLimiter:
        return RequestsPerMinuteLimiter(int(self.config.get("max_requests_per_minute", 400)))

    def discover_streams(self) -> list[Stream]:
        streams = [stream_type(tap=self) for stream_type in STREAM_TYPES]
        for stream in streams:
            stream.logger.addFilter(DRY_RUN_STOP)
        return streams


class _DryRunStopFilter(logging.Filter):
    """Drops the SDK's "unhandled error" line when a stream stops at the --test record limit.

    The SDK's connection test (a final method) ends each stream by raising at its first record
    and logs that as an ERROR; a passing test should not print one. Real errors still show.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        stopped = sys.exc_info()[1]  # the exception being handled where the line is logged
        return not (
            record.levelno == logging.ERROR
            and isinstance(stopped, (AbortedSyncFailedException, AbortedSyncPausedException))
            and isinstance(stopped.__cause__, MaxRecordsLimitException)
        )


DRY_RUN_STOP = _DryRunStopFilter()


def unknown_settings(config: t.Mapping[str, t.Any], settings: dict[str, t.Any]) -> list[str]:
    """A warning per config key the tap does not read, naming the closest setting if any."""
    known = list(settings["properties"])
    warnings = []
    for name in sorted(config.keys() - set(known)):
        closest = difflib.get_close_matches(name, known, n=1)
        hint = f": did you mean {closest[0]}?" if closest else ""
        warnings.append(f"Unknown setting {name!r} is ignored{hint}")
    return warnings


def redact(text: str, secret: t.Any) -> str:
    """`text` with every rendering of `secret` (str and repr) replaced by ***."""
    if secret in (None, ""):
        return text
    for form in {str(secret), repr(secret)}:
        text = text.replace(form, "***")
    return text


def config_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Problems with config values the JSON schema cannot express, each with its fix."""
    errors = []
    dates = {}
    for key in ("start_date", "end_date"):
        value = config.get(key)
        if value is None:
            continue
        try:
            dates[key] = streams.parse_timestamp(str(value))
        except ValueError:
            errors.append(
                f"{key} {value!r} is not an ISO 8601 date-time: use e.g. 2024-01-31T00:00:00Z"
            )
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        errors.append("end_date must be after start_date")
    positive = (
        "page_size",
        "window_days",
        "max_requests_per_minute",
        "request_timeout",
        "max_retries",  # attempts: 1 means no retry; 0 would mean no limit to backoff
    )
    errors.extend(
        f"{key} must be greater than 0 (got {config[key]!r})"
        for key in positive
        if isinstance(config.get(key), (int, float)) and config[key] <= 0
    )
    lookback = config.get("lookback_window_days")
    if isinstance(lookback, (int, float)) and lookback < 0:
        errors.append(f"lookback_window_days must not be negative (got {lookback!r})")
    url = urlparse(str(config.get("api_url", "")))
    if url.scheme not in {"http", "https"} or not url.netloc:
        errors.append(f"api_url {config.get('api_url')!r} is not an http(s) URL")
    return errors


def failure_message(exc: BaseException) -> str | None:
    """The one line a person should read for an error that ends a run; None for a bug."""
    if isinstance(exc, AmplemarketError):
        message = str(exc)
    elif isinstance(exc, RetriableAPIError):
        message = f"Amplemarket kept failing after every retry ({exc}): try again later"
    elif isinstance(exc, requests.exceptions.RequestException):
        message = f"Could not reach the Amplemarket API ({type(exc).__name__}): check api_url"
    else:
        return None
    return " ".join(message.split())[:500]  # bodies can span many lines


def main() -> None:
    """Console entry point: errors a person can fix end in one line, not a traceback."""
    try:
        TapAmplemarket.cli()
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            raise
        TapAmplemarket.logger.error("%s", message)
        sys.exit(1)


if __name__ == "__main__":
    main()
