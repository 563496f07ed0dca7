"""The Amplemarket tap: its settings, declared once with their bounds, and its streams."""

from __future__ import annotations

import copy
import logging
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_amplemarket import sdk_logs, streams
from tap_amplemarket.catalog import include_keys
from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.run_context import RunContext
from tap_amplemarket.secrets import redacted, remember
from tap_amplemarket.settings import (
    config_errors,
    schema_errors,
    setting_name_typos,
    unknown_settings,
)
from tap_amplemarket.state import checked_state
from tap_amplemarket.timefmt import format_datetime, read_instant
from tap_amplemarket.writer import CheckpointFlushingWriter

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.streams import Stream

#: Every stream class of streams.py, in the order declared there: a class is a stream.
STREAM_TYPES: tuple[type[AmplemarketStream], ...] = tuple(
    value
    for value in vars(streams).values()
    if isinstance(value, type)
    and issubclass(value, AmplemarketStream)
    and value.__module__ == streams.__name__
)

#: The SDK's setting that switches ACTIVATE_VERSION on (the tap's default: on).
EMIT_ACTIVATE_VERSION = "emit_activate_version_messages"
DOCUMENTED_RATE_LIMIT = 500  # requests per minute per API key
#: What the window settings default to: the calls stream's declaration.
CALLS_WINDOWS = streams.CallsStream.date_windows
assert CALLS_WINDOWS is not None
#: Longest window_days / lookback_window_days accepted: ten years.
MAX_DAYS = 3650


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
                "history, from 2010-01-01."
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
            th.IntegerType(exclusive_minimum=0, maximum=10**9),
            default=100,
            title="Page size",
            description="Records per request; clamped to each endpoint's maximum (/mailboxes: 20).",
        ),
        th.Property(
            "window_days",
            th.IntegerType(exclusive_minimum=0, maximum=MAX_DAYS),
            default=CALLS_WINDOWS.first_window_days,
            title="Window days",
            description=(
                "Span of the first date windows of calls, shared by the concurrent requests "
                "(later windows are sized from the calls per day seen, aiming at 20 full pages "
                "each). "
                "A STATE checkpoint follows every window read to its end (and every window "
                "before it), so an interrupted sync resumes where it stopped."
            ),
        ),
        th.Property(
            "lookback_window_days",
            th.IntegerType(minimum=0, maximum=MAX_DAYS),
            default=CALLS_WINDOWS.lookback_days,
            title="Lookback window days",
            description=(
                "Each run re-reads this many days before the bookmark (or start_date), picking "
                "up calls logged late or updated after the fact, and calls an API date filter "
                "read in whole days or another time zone placed late: at least 1 for those."
            ),
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType(exclusive_minimum=0, maximum=10**9),
            default=490,
            title="Max requests per minute",
            description=(
                f"Client-side request limit; the API allows {DOCUMENTED_RATE_LIMIT} per minute "
                "per key."
            ),
        ),
        th.Property(
            "max_concurrent_requests",
            th.IntegerType(exclusive_minimum=0, maximum=16),
            default=4,
            title="Max concurrent requests",
            description=(
                "Date windows of calls fetched at once (each window's pages stay in order, "
                "records are written as their pages come). 1 fetches one page at a time; "
                "more than 16 would only wait, the API's quota being per key."
            ),
        ),
        th.Property(
            "request_timeout",
            th.IntegerType(exclusive_minimum=0, maximum=3600),
            default=60,
            title="Request timeout",
            description=(
                "Seconds one request may take, connection, headers and body together, before "
                "it is retried."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType(exclusive_minimum=0, maximum=100),
            default=8,
            title="Max retries",
            description=(
                "Attempts per request on 5xx, timeouts, resets and broken bodies (exponential "
                "backoff). A 429's Retry-After is waited out, up to 10 minutes, not counted."
            ),
        ),
        th.Property(
            "max_pages_per_partition",
            th.IntegerType(exclusive_minimum=0, maximum=10**9),
            default=100_000,
            title="Max pages per partition",
            description=(
                "Pages one listing may take (a stream, one user's tasks, one lead list, one "
                "window of calls) before the run stops with an error: an API that links on "
                "for ever cannot keep a scheduled sync running for ever."
            ),
        ),
        th.Property(
            "user_agent",
            th.StringType,
            title="User agent",
            description="User-Agent header sent with every request.",
        ),
        th.Property(
            EMIT_ACTIVATE_VERSION,
            th.BooleanType,
            default=True,
            title="Emit ACTIVATE_VERSION messages",
            description=(
                "Mark rows deleted in Amplemarket: once a run has read a full-table stream "
                "whole (every stream but calls), it sends ACTIVATE_VERSION, and a target that "
                "supports it (target-postgres, target-snowflake) marks the rows that run did "
                "not see as deleted (_sdc_deleted_at), or removes them (hard_delete). Not sent "
                "for a stream skipped, stopped or failed part-way, nor for calls."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Validate the config as the SDK does, with its errors worded here and secrets hidden.

        Then warn of unknown settings, and refuse typos of setting names and what the settings
        schema cannot check.
        """
        try:
            super().__init__(*args, **kwargs)
        except ConfigValidationError as exc:
            # JSON Schema messages quote the offending value: never let that be a secret.
            remember(self.config)
            # The SDK's lines quote the validator, not the fix: the same schema, worded here.
            schema = self.settings_jsonschema()
            errors = schema_errors(self.config, schema, self.name) or exc.errors
            errors += [  # a typo of a required setting is named in that setting's line
                line
                for line in setting_name_typos(self.config, schema)
                if not any(name in line for name in schema.get("required", []))
            ]
            errors = [redacted(error) for error in errors]
            raise ConfigValidationError(str(exc), errors=errors, schema=exc.schema) from None
        remember(self.config)
        self.metrics_logger.setLevel(sdk_logs.metrics_level(self.name))
        schema = self.settings_jsonschema()
        for warning in unknown_settings(self.config, schema):
            self.logger.warning("%s", warning)
        errors = setting_name_typos(self.config, schema)
        if errors := errors + config_errors(self.config, self.config_jsonschema):
            errors = [redacted(error) for error in errors]
            raise ConfigValidationError("Config validation failed", errors=errors)

    def _normalize_dates(self) -> None:
        """Put start_date and end_date in the normal form (timefmt's), as the bookmark is.

        See state.py: the SDK reads them with its own parser, which refuses RFC 3339 forms such
        as a lowercase "z", and compares bookmarks as text.
        """
        for key in ("start_date", "end_date"):
            value = self.config.get(key)
            if isinstance(value, str) and (instant := read_instant(value)) is not None:
                self._config[key] = format_datetime(instant[0])  # the SDK has no setter

    @override
    def setup_mapper(self) -> None:
        # Before the mapper reads the input catalog into each stream's SCHEMA.
        if self.input_catalog is not None:
            for warning in include_keys(self.input_catalog):
                self.logger.warning("%s", warning)
        super().setup_mapper()

    @classmethod
    def settings_jsonschema(cls) -> dict[str, t.Any]:
        """Every setting the tap reads, its own and the SDK's built-in ones, as --about lists."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return schema

    @cached_property
    def run_context(self) -> RunContext:
        """The objects every stream of this run shares, made once (see RunContext)."""
        return RunContext.from_config(self.config)

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        remember(self.config)  # the SDK loads the state before __init__ returns
        checked = checked_state(state, self.logger)  # its errors quote the state, secrets hidden
        super().load_state(checked)

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK's handler exits 0, which tells a scheduler that a cut-short sync succeeded.
        writer = self.message_writer
        assert isinstance(writer, CheckpointFlushingWriter)  # message_writer_class, or a subclass
        writer.interrupt(signum)

    @override
    def discover_streams(self) -> list[Stream]:
        sdk_logs.quiet(logging.getLogger("singer_sdk"))  # where the state helper logs
        sdk_logs.quiet(self.logger)
        self._normalize_dates()  # before each stream copies the config
        found: list[Stream] = []
        for stream_type in STREAM_TYPES:
            stream = stream_type(tap=self, run_context=self.run_context)
            sdk_logs.quiet(stream.logger)
            found.append(stream)
        return found
