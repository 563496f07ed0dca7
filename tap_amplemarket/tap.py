"""The Amplemarket tap: its settings, their checks, and its streams."""

from __future__ import annotations

import copy
import datetime
import decimal
import difflib
import ipaddress
import itertools
import json
import logging
import math
import re
import sys
import threading
import typing as t
from functools import cached_property
from urllib.parse import urlparse

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, RetriableAPIError
from typing_extensions import override

from tap_amplemarket import sdk_logs, streams
from tap_amplemarket.client import AmplemarketStream, ApiAnswers, origin
from tap_amplemarket.errors import (
    ENDS_IN_ONE_LINE,
    AmplemarketError,
    BadStateError,
    redact,
    redact_logs,
    scrub,
)
from tap_amplemarket.throttle import PacedLimiter
from tap_amplemarket.timefmt import isoformat_z, parse_timestamp
from tap_amplemarket.writer import CheckpointFlushingWriter, Interrupted

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

DOCUMENTED_RATE_LIMIT = 500  # requests per minute per API key
#: What the window settings default to: the calls stream's declaration.
CALLS_WINDOWS = streams.CallsStream.date_windows
assert CALLS_WINDOWS is not None
#: Longest window_days / lookback_window_days accepted: ten years.
MAX_DAYS = 3650
#: The largest value of each setting that has one, and why, if not plain.
MAXIMA: dict[str, tuple[int, str]] = {
    "window_days": (MAX_DAYS, ""),
    "lookback_window_days": (MAX_DAYS, ""),
    "max_concurrent_requests": (16, ": the API's quota is per key, more only wait"),
    "request_timeout": (3600, ""),
    "max_retries": (100, ""),
    "max_requests_per_minute": (10**9, ""),
    "page_size": (10**9, ""),
}
#: start_date and end_date lie between these (far beyond, date arithmetic overflows).
EARLIEST_DATE = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
LATEST_DATE = datetime.datetime(2999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)


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
            th.IntegerType,
            default=100,
            title="Page size",
            description="Records per request; clamped to each endpoint's maximum (/mailboxes: 20).",
        ),
        th.Property(
            "window_days",
            th.IntegerType,
            default=CALLS_WINDOWS.first_window_days,
            title="Window days",
            description=(
                "Span of the first date windows of calls, shared by the concurrent requests "
                "(later windows are sized from the calls per day seen, aiming at 20 full pages "
                "each). "
                "A STATE checkpoint follows every window, so an interrupted sync resumes where "
                "it stopped."
            ),
        ),
        th.Property(
            "lookback_window_days",
            th.IntegerType,
            default=CALLS_WINDOWS.lookback_days,
            title="Lookback window days",
            description=(
                "Each incremental run re-reads this many days before the bookmark, picking up "
                "calls logged late or updated after the fact."
            ),
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType,
            default=490,
            title="Max requests per minute",
            description=(
                f"Client-side request limit; the API allows {DOCUMENTED_RATE_LIMIT} per minute "
                "per key."
            ),
        ),
        th.Property(
            "max_concurrent_requests",
            th.IntegerType,
            default=4,
            title="Max concurrent requests",
            description=(
                "Date windows of calls fetched at once (each window's pages stay in order, "
                "and records are written window after window). 1 fetches one page at a time."
            ),
        ),
        th.Property(
            "request_timeout",
            th.IntegerType,
            default=60,
            title="Request timeout",
            description=(
                "Seconds one request may take, connection, headers and body together, before "
                "it is retried."
            ),
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=8,
            title="Max retries",
            description=(
                "Attempts per request on 5xx, timeouts, resets and broken bodies (exponential "
                "backoff). A 429's Retry-After is waited out, up to 10 minutes, not counted."
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
            # JSON Schema messages quote the offending value: never let that be the key. The
            # SDK validates inside its constructor and keeps the raw config only in `_config`.
            config = getattr(self, "_config", {})
            as_text = numbers_given_as_text(config, self.settings_jsonschema())
            errors = [  # a number given as text: its hint says what the type error says, and why
                with_fix(redact(error, config.get("api_key")))
                for error in exc.errors
                if not any(error.endswith(f"in config[{name!r}]") for name in as_text)
            ]
            errors += as_text.values()
            errors += unknown_settings(config, self.settings_jsonschema())  # e.g. api_kye
            raise ConfigValidationError(str(exc), errors=errors, schema=exc.schema) from None
        for warning in unknown_settings(self.config, self.settings_jsonschema()):
            self.logger.warning("%s", warning)
        if errors := config_errors(self.config):
            raise ConfigValidationError("Config validation failed", errors=errors)
        if isinstance(key := self.config.get("api_key"), str):  # --discover may run without
            redact_logs(key)

    @classmethod
    def settings_jsonschema(cls) -> dict[str, t.Any]:
        """Every setting the tap reads, its own and the SDK's built-in ones, as --about lists."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return schema

    @cached_property
    def rate_limiter(self) -> PacedLimiter:
        return PacedLimiter(int(self.config["max_requests_per_minute"]))

    @cached_property
    def api_answers(self) -> ApiAnswers:
        return ApiAnswers()

    @cached_property
    def in_flight(self) -> threading.BoundedSemaphore:
        return threading.BoundedSemaphore(int(self.config["max_concurrent_requests"]))

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        try:
            checked = checked_state(state)
        except BadStateError as exc:  # it quotes the state, which could hold the key
            raise BadStateError(redact(str(exc), self.config.get("api_key"))) from None
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
        found: list[Stream] = []
        for stream_type in STREAM_TYPES:
            stream = stream_type(tap=self)
            stream.rate_limiter = self.rate_limiter  # one quota per key: one limiter
            stream.api_answers = self.api_answers
            stream.in_flight = self.in_flight
            sdk_logs.quiet(stream.logger)
            found.append(stream)
        return found


def unknown_settings(config: t.Mapping[str, t.Any], settings: dict[str, t.Any]) -> list[str]:
    """A warning per config key the tap does not read, naming the closest setting if any."""
    known = list(settings["properties"])
    warnings = []
    for name in sorted(config.keys() - set(known)):
        closest = difflib.get_close_matches(name, known, n=1)
        hint = f": did you mean {closest[0]}?" if closest else ""
        warnings.append(f"Unknown setting {name!r} is ignored{hint}")
    return warnings


_REQUIRED = re.compile(r"'(\w+)' is a required property")


def with_fix(error: str) -> str:
    """A JSON Schema error, with how to fix it where the validator does not say."""
    if match := _REQUIRED.fullmatch(error):
        name = match.group(1)
        return (
            f"{error}: set it (`meltano config set {TapAmplemarket.name} {name}`, or the "
            f"environment variable {TapAmplemarket.name.upper().replace('-', '_')}_{name.upper()}"
            " with --config ENV)"
        )
    return error


def numbers_given_as_text(
    config: t.Mapping[str, t.Any], settings: dict[str, t.Any]
) -> dict[str, str]:
    """A fix for each number setting given as text, by name: what Meltano passes for a
    setting whose kind its project does not declare (`meltano config set ... page_size 50`)."""
    hints = {}
    for name, value in config.items():
        types = settings["properties"].get(name, {}).get("type", [])
        if isinstance(value, str) and {"integer", "number"} & set(types) and _is_number(value):
            hints[name] = (
                f"{name} is the text {value!r}, not a number: in a Meltano project, declare the "
                f"setting with its kind (kind: {'integer' if 'integer' in types else 'decimal'}"
                "; meltano-plugin.yml declares them all)"
            )
    return hints


def _as_float(value: int | float | decimal.Decimal) -> float:
    """`value` as a float; an integer too large for one is infinite (and then too large)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def checked_state(state: t.Any) -> dict[str, t.Any]:
    """`state` if the tap can resume from it; a future calls bookmark is clamped to now.

    Raises BadStateError naming the stream and the value for anything else.
    """
    fix = (
        "fix it, or clear it for a full sync (`meltano state clear <state id>`; in Airbyte, "
        "reset the connection)"
    )
    if isinstance(state, dict) and state.get("type") == "STATE" and "value" in state:
        msg = f'The state is a Singer STATE message, not a state: pass its "value"; or {fix}'
        raise BadStateError(msg)
    if isinstance(state, dict) and set(state) == {"singer_state"}:
        msg = (
            "The state is Meltano's wrapping of one (`meltano state get` prints it so): pass "
            f'what is inside "singer_state"; or {fix}'
        )
        raise BadStateError(msg)
    if not isinstance(state, dict) or not isinstance(state.get("bookmarks", {}), dict):
        msg = f"The state is not a Singer state object ({str(state)[:80]!r}): {fix}"
        raise BadStateError(msg)
    if state and "bookmarks" not in state:
        msg = f"The state has no bookmarks (keys: {', '.join(map(str, state))}): {fix}"
        raise BadStateError(msg)
    for stream_name, stream_state in state.get("bookmarks", {}).items():
        partitions = stream_state.get("partitions", []) if isinstance(stream_state, dict) else 0
        markers = stream_state.get("progress_markers", {}) if isinstance(stream_state, dict) else 0
        if not isinstance(stream_state, dict) or not (
            isinstance(partitions, list)
            and all(isinstance(p, dict) and isinstance(p.get("context"), dict) for p in partitions)
            and isinstance(markers, dict)
        ):
            msg = f"The state of stream {stream_name} is not a bookmark ({stream_state!r}): {fix}"
            raise BadStateError(msg[:500])
    calls = state.get("bookmarks", {}).get(streams.CallsStream.name, {})
    value = calls.get("replication_key_value")
    if value is None:
        return state
    # A bookmark without its key can only be the calls' own (the SDK would ignore it).
    key = calls.setdefault("replication_key", streams.CallsStream.replication_key)
    try:
        if key != streams.CallsStream.replication_key:
            raise ValueError
        bookmark = parse_timestamp(str(value))
    except (ValueError, OverflowError):
        msg = (
            f"The state of stream calls has bookmark {key}={value!r}, not a start_date "
            f"date-time: {fix}"
        )
        raise BadStateError(msg) from None
    now = datetime.datetime.now(datetime.timezone.utc)
    if bookmark > now:
        TapAmplemarket.logger.warning(
            "The state of stream calls has bookmark start_date=%s, in the future: "
            "syncing from now instead",
            value,
        )
        calls["replication_key_value"] = isoformat_z(now)
    elif bookmark < EARLIEST_DATE:
        TapAmplemarket.logger.warning(
            "The state of stream calls has bookmark start_date=%s, before %d: syncing from "
            "start_date instead",
            value,
            EARLIEST_DATE.year,
        )
        del calls["replication_key_value"]
    return state


#: The tap's own settings; the SDK's built-in ones (batch_config, stream_maps, ...) take null.
OWN_SETTINGS = frozenset(TapAmplemarket.config_jsonschema["properties"])
#: Settings whose null means "not set": they have no default to fall back on.
NULLABLE_SETTINGS = frozenset({"start_date", "end_date", "user_agent"})


def header_value_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Settings sent as HTTP headers must be printable ASCII: a key pasted with a trailing
    newline would otherwise fail in `requests`, whose error quotes the header, key and all."""
    errors = []
    key = config.get("api_key")
    if isinstance(key, str) and not key.strip():
        errors.append("api_key is empty: set the key Amplemarket gave you")
    elif isinstance(key, str) and not _printable_ascii(key):
        errors.append(
            "api_key holds a space, a line break or a character that is not ASCII (often a "
            "newline pasted with it): set the key alone"
        )
    agent = config.get("user_agent")
    if isinstance(agent, str) and not _printable_ascii(agent.replace(" ", "")):
        errors.append("user_agent holds a line break or a character that is not ASCII")
    return errors


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable() and " " not in text


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Problems with config values beyond their types, each one line naming the setting.

    The settings schema checks types and the required key. These checks stay here: JSON
    Schema cannot compare end_date with start_date, nor tell a loopback api_url from
    another host, and the SDK's validator does not check date-time formats. The ranges
    (greater than 0, at most MAX_DAYS, ...) are plain minimum/maximum, kept here too so
    that each error says what to do ("page_size must be greater than 0 (got 0)") rather
    than the SDK's "0 is less than the minimum of 1 in config['page_size']".
    """
    errors = [
        f"{key} is null: give it a value, or leave it out for the default"
        for key, value in config.items()
        if value is None and key in OWN_SETTINGS and key not in NULLABLE_SETTINGS
    ]
    errors += header_value_errors(config)
    dates = {}
    for key in ("start_date", "end_date"):
        value = config.get(key)
        if value is None:
            continue
        try:
            dates[key] = parse_timestamp(str(value))
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
        "max_concurrent_requests",
        "request_timeout",
        "max_retries",  # attempts: 1 means no retry; 0 would mean no limit to backoff
    )
    # Config files are read with Decimal for non-integers.
    numbers = {
        k: _as_float(v)
        for k, v in config.items()
        if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool)
    }
    errors.extend(
        f"{key} must be a finite number (got {config[key]})"
        for key, value in numbers.items()
        if not math.isfinite(value) and not isinstance(config[key], int)
    )
    errors.extend(
        f"{key} must be greater than 0 (got {config[key]}): "
        "set a positive value, or leave it out for the default"
        for key in positive
        if numbers.get(key, 1) <= 0
    )
    if numbers.get("lookback_window_days", 0) < 0:
        errors.append(
            f"lookback_window_days must not be negative (got {config['lookback_window_days']}): "
            "use 0 for no lookback"
        )
    errors.extend(
        f"{key} must be at most {maximum} (got {config[key]}){why}"
        for key, (maximum, why) in MAXIMA.items()
        if numbers.get(key, 0) > maximum
    )
    errors.extend(
        f"{key} must be between {EARLIEST_DATE.year} and {LATEST_DATE.year} (got {config[key]})"
        for key, when in dates.items()
        if not EARLIEST_DATE <= when <= LATEST_DATE
    )
    errors += api_url_errors(str(config.get("api_url", "")))
    return errors


def api_url_errors(api_url: str) -> list[str]:
    """What makes `api_url` unsafe or unusable as the one origin the key is sent to."""
    try:
        url = urlparse(api_url)
        scheme, host, _port = origin(api_url)
    except ValueError:
        return [f"api_url {api_url!r} is not an http(s) URL"]
    if url.scheme not in {"http", "https"} or not url.netloc:
        return [f"api_url {api_url!r} is not an http(s) URL"]
    hostname = url.hostname or ""  # lowercase, IPv6 without its brackets
    if "\\" in api_url or host.strip("[]") != hostname:
        return [f"api_url {api_url!r} names its host ambiguously (a backslash?): write it plainly"]
    if url.query or url.fragment:
        return [f"api_url {api_url!r} has a query or fragment: give the base URL alone"]
    if scheme == "http" and not is_loopback(hostname):
        return [
            f"api_url {api_url!r} is plain http to another machine: the API key would cross "
            "the network unencrypted; use https://"
        ]
    return []


def failure_message(exc: BaseException) -> str | None:
    """The one line a person should read for an error that ends a run; None for a bug."""
    if not isinstance(exc, ENDS_IN_ONE_LINE):
        return None
    if isinstance(exc, AmplemarketError):
        message = str(exc)
    elif isinstance(exc, RetriableAPIError):
        message = f"Amplemarket kept failing after every retry ({exc}): try again later"
    else:
        request = getattr(exc, "request", None)
        parts = urlparse(str(getattr(request, "url", "") or ""))
        at = f" at {parts.scheme}://{parts.netloc}" if parts.netloc else ""
        message = (
            f"Could not reach the Amplemarket API{at} ({type(exc).__name__}) after every retry: "
            "check api_url and the network"
        )
    return scrub(" ".join(message.split()))[:500]  # bodies can span many lines


def flag_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` in `argv` (`--flag value` or `--flag=value`)."""
    values = [value for name, value in itertools.pairwise(argv) if name == flag]
    return values + [arg.removeprefix(f"{flag}=") for arg in argv if arg.startswith(f"{flag}=")]


#: The files the command line reads, and what to do when one cannot be used.
FILE_ARGUMENTS = {
    "--config": ("config", "pass a JSON object of settings (see --about)"),
    "--state": ("state", "pass a state a previous run emitted, or none for a full sync"),
}


class UnreadableFileError(AmplemarketError):
    """A file named on the command line cannot be read as JSON."""


def read_json_file(path: str, what: str, fix: str) -> t.Any:
    """The JSON in `path`. Raises UnreadableFileError naming the file, never its content
    (a config holds the key)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        msg = f"Cannot read the {what} file {path} ({exc.strerror}): {fix}"
        raise UnreadableFileError(msg) from None
    if not text.strip():
        msg = f"The {what} file {path} is empty: {fix}"
        raise UnreadableFileError(msg)
    try:
        return json.loads(text)
    except ValueError as exc:  # its message gives a position, not the text there
        msg = f"The {what} file {path} is not valid JSON ({exc}): {fix}"
        raise UnreadableFileError(msg) from None
    except RecursionError:
        msg = f"The {what} file {path} nests JSON deeper than can be read: {fix}"
        raise UnreadableFileError(msg) from None


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


def main() -> None:
    """Console entry point: errors a person can fix end in one line, not a traceback."""
    sdk_logs.quiet(TapAmplemarket.logger)  # where the CLI logs config errors
    if message := file_argument_error(sys.argv[1:]):
        TapAmplemarket.logger.error("%s", message)
        sys.exit(1)
    try:
        TapAmplemarket.cli()
    except Interrupted as interrupted:
        TapAmplemarket.logger.error(
            "Interrupted by %s: the next run resumes from the last STATE emitted",
            interrupted.signal_name,
        )
        sys.exit(interrupted.exit_code)
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            TapAmplemarket.logger.critical("Unexpected error", exc_info=True)
        else:
            TapAmplemarket.logger.error("%s", message)
        sys.exit(1)


if __name__ == "__main__":
    main()
