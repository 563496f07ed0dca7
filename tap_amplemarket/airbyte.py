"""The same tap, spoken in the Airbyte protocol: `source-amplemarket spec|check|discover|read`.

One implementation: `read` runs TapAmplemarket itself (streams, windows, lookback, limiter,
retries, errors) with `AirbyteWriter` (airbyte_writer.py) as its message writer, which
turns the Singer RECORD and STATE messages into Airbyte ones. Logs go to stderr, as the
Singer tap's do (the Airbyte platform keeps a connector's stderr in the sync's log).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import os
import signal
import sys
import time
import traceback
import typing as t

# Private: the SDK sets up its console logging only inside its click command (see setup_logging).
from singer_sdk._logging import _setup_console_logging
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.plugin_base import _plugin_log_level  # private: as the above, its log level

from tap_amplemarket import sdk_logs
from tap_amplemarket.airbyte_writer import AirbyteWriter, Json
from tap_amplemarket.client import AmplemarketStream
from tap_amplemarket.errors import (
    AuthenticationError,
    BadStateError,
    EndpointNotAvailableError,
    UnreadableFileError,
    failure_message,
    read_json_file,
)
from tap_amplemarket.secrets import redacted_strings, remember
from tap_amplemarket.tap import EMIT_ACTIVATE_VERSION, TapAmplemarket
from tap_amplemarket.writer import Interrupted, checked_output

if t.TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from singer_sdk.streams import Stream


logger = logging.getLogger("source-amplemarket")


def _sdk_settings() -> frozenset[str]:
    """The settings the SDK adds to every tap (stream maps, flattening, batch)."""
    schema: Json = {"type": "object", "properties": {}}
    TapAmplemarket.append_builtin_config(schema)
    return frozenset(schema["properties"])


#: Left out of the spec and ignored in a config: SCHEMA messages, which would carry their
#: effect on the schemas, have no Airbyte counterpart, and BATCH would replace RECORDs.
#: Nor has ACTIVATE_VERSION: there a full refresh that overwrites carries deletions.
SDK_SETTINGS = _sdk_settings() | {EMIT_ACTIVATE_VERSION}


class InputError(Exception):
    """A config, catalog or state file that cannot be used; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """What a TRACE ERROR says of a failure: its Airbyte type and the one line to show."""

    failure_type: t.Literal["config_error", "system_error"]
    message: str


def describe_failure(exc: BaseException) -> Failure | None:
    """The one line and failure type for an error a person can fix; None for a bug."""
    if isinstance(exc, ConfigValidationError):
        return Failure("config_error", " ".join(f"{exc}: {'; '.join(exc.errors)}".split()))
    if isinstance(exc, InputError):
        return Failure("config_error", str(exc))
    message = failure_message(exc)
    if message is None:
        return None
    # A rejected key or an unusable state is the user's to fix; other API failures are not.
    if isinstance(exc, (AuthenticationError, BadStateError)):
        return Failure("config_error", message)
    return Failure("system_error", message)


def connection_specification() -> Json:
    """The tap's settings schema, less the SDK's own settings, with Airbyte's annotations."""
    schema = copy.deepcopy(TapAmplemarket.config_jsonschema)
    properties = {
        name: setting for name, setting in schema["properties"].items() if name not in SDK_SETTINGS
    }
    for order, setting in enumerate(properties.values()):
        setting["order"] = order  # the form shows settings in the tap's order
        if setting.get("secret"):
            setting["airbyte_secret"] = True
    return {**schema, "title": "Amplemarket", "properties": properties}


def spec_message() -> Json:
    """The SPEC message: the settings form, and that streams can be read incrementally."""
    return {
        "type": "SPEC",
        "spec": {
            "connectionSpecification": connection_specification(),
            "supportsIncremental": True,
        },
    }


def airbyte_stream(stream: Stream) -> Json:
    """`stream` as an entry of an Airbyte CATALOG message.

    Full refresh always; incremental too, with its replication key as the source-defined
    cursor, if it has one.
    """
    entry: Json = {
        "name": stream.name,
        "json_schema": stream.schema,
        "supported_sync_modes": ["full_refresh"],
        "source_defined_primary_key": [[key] for key in stream.primary_keys or ()],
    }
    if stream.replication_key:
        entry["supported_sync_modes"].append("incremental")
        entry["source_defined_cursor"] = True
        entry["default_cursor_field"] = [stream.replication_key]
    return entry


def load_json(path: str, what: str) -> t.Any:
    """The JSON in `path`; InputError (a config_error to Airbyte) if it cannot be read."""
    try:
        return read_json_file(path, what, "pass a file that holds one JSON document")
    except UnreadableFileError as exc:
        raise InputError(str(exc)) from None


def tap_config(config: t.Any) -> Json:
    """The tap's settings from an Airbyte config: `config` less SDK_SETTINGS.

    Warns naming the SDK settings ignored; InputError if `config` is not a JSON object.
    """
    if not isinstance(config, dict):
        msg = "The config file must hold a JSON object of settings: see `source-amplemarket spec`"
        raise InputError(msg)
    if ignored := sorted(SDK_SETTINGS & config.keys()):
        logger.warning("Ignoring Singer SDK settings Airbyte cannot use: %s", ", ".join(ignored))
    return {name: value for name, value in config.items() if name not in SDK_SETTINGS}


def configured_streams(catalog: t.Any) -> dict[str, str]:
    """Configured stream name -> sync mode."""
    try:
        modes = {entry["stream"]["name"]: str(entry["sync_mode"]) for entry in catalog["streams"]}
    except (KeyError, TypeError) as exc:
        msg = f"The configured catalog is not an Airbyte ConfiguredAirbyteCatalog (no {exc})"
        raise InputError(msg) from None
    if names := [name for name in modes if not isinstance(name, str)]:
        msg = (
            f"The configured catalog names a stream {names[0]!r}, not a stream name (text): "
            "refresh the source schema"
        )
        raise InputError(msg)
    return modes


def singer_catalog(discovered: Json, selected: Collection[str]) -> Json:
    """The tap's own catalog with exactly the configured streams selected."""
    unknown = set(selected) - {entry["tap_stream_id"] for entry in discovered["streams"]}
    if unknown:
        msg = (
            f"The configured catalog names streams this source does not have: "
            f"{', '.join(sorted(unknown))}: refresh the source schema"
        )
        raise InputError(msg)
    for entry in discovered["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in selected
    return discovered


def singer_state(state: t.Any, ignore: Collection[str]) -> Json:
    """Singer state from Airbyte per-stream state (or the tap's own, legacy form).

    Bookmarks of streams in `ignore` (those configured for full refresh) are left out.
    """
    if not state:
        return {}
    if isinstance(state, dict) and isinstance(state.get("bookmarks"), dict):
        bookmarks = dict(state["bookmarks"])  # legacy: the Singer state itself
    else:
        bookmarks = stream_bookmarks(state)
    return {"bookmarks": {name: value for name, value in bookmarks.items() if name not in ignore}}


def stream_bookmarks(state: t.Any) -> Json:
    """Stream name -> stream_state of an Airbyte per-stream state list."""
    try:
        if not all(entry["type"] == "STREAM" for entry in state):
            raise TypeError  # GLOBAL or LEGACY entries: not what this source writes
        return {
            entry["stream"]["stream_descriptor"]["name"]: entry["stream"].get("stream_state") or {}
            for entry in state
        }
    except (KeyError, TypeError, AttributeError):
        msg = (
            "The state is neither Airbyte per-stream state (a list of STREAM states) nor this "
            "tap's Singer state: reset the connection's state"
        )
        raise InputError(msg) from None


#: A connection check gives up after this many attempts: it must answer in seconds.
CHECK_MAX_ATTEMPTS = 3


def check(config: Json, writer: AirbyteWriter) -> None:
    """One cheap request through the tap's own client: the dispositions list (one page)."""
    settings = tap_config(config)
    attempts = settings.get("max_retries")
    if "max_retries" not in settings or (type(attempts) is int and attempts > CHECK_MAX_ATTEMPTS):
        settings["max_retries"] = CHECK_MAX_ATTEMPTS  # a bad value is still reported as such
    try:
        tap = TapAmplemarket(config=settings, message_writer=writer)
        stream = tap.streams["dispositions"]
        assert isinstance(stream, AmplemarketStream)
        stream.ABORT_AT_RECORD_COUNT = 1  # as the SDK's --test sets it: a connection test
        # request_records, not get_records: a 404 must fail the check, not skip a stream.
        next(iter(stream.request_records(None)), None)
    except EndpointNotAvailableError as exc:
        message = f"{exc}; or api_url is not the API's base URL: check api_url"
        status: Json = {"status": "FAILED", "message": message}
    except Exception as exc:
        failure = describe_failure(exc)
        if failure is None:
            raise
        status = {"status": "FAILED", "message": failure.message}
    else:
        status = {"status": "SUCCEEDED"}
    if status["status"] == "FAILED":
        logger.error("%s", status["message"])
    writer.emit({"type": "CONNECTION_STATUS", "connectionStatus": status})


def discover(config: Json, writer: AirbyteWriter) -> None:
    """Emit the CATALOG message: every stream of the tap, as Airbyte describes one."""
    tap = TapAmplemarket(config=tap_config(config), message_writer=writer)
    streams = [airbyte_stream(stream) for stream in tap.streams.values()]
    writer.emit({"type": "CATALOG", "catalog": {"streams": streams}})


def read(config: Json, catalog: t.Any, state: t.Any, writer: AirbyteWriter) -> None:
    """Sync the configured streams with the tap: Airbyte catalog and state in, messages out.

    Streams configured for full refresh start over (their bookmarks are left out); one
    configured incremental that has no cursor is read in full, with a warning.
    """
    settings = tap_config(config)
    sync_modes = configured_streams(catalog)
    full_refresh = {name for name, mode in sync_modes.items() if mode == "full_refresh"}
    # Discovery needs no setting it would warn about: the sync's tap warns, once.
    known = TapAmplemarket.settings_jsonschema()["properties"]
    discovery_settings = {name: value for name, value in settings.items() if name in known}
    discovery = TapAmplemarket(config=discovery_settings, message_writer=writer)
    for name, mode in sync_modes.items():
        stream = discovery.streams.get(name)
        if mode == "incremental" and stream is not None and not stream.replication_key:
            logger.warning(
                "%s has no cursor, so it is read in full every time: configure it as "
                "full_refresh (discover offers only that)",
                name,
            )
    discovered = discovery.catalog_dict
    writer.state_streams = frozenset(sync_modes)
    tap = TapAmplemarket(
        config=settings,
        catalog=singer_catalog(discovered, sync_modes.keys()),
        state=singer_state(state, ignore=full_refresh),
        message_writer=writer,
    )
    for stream in tap.streams.values():
        if isinstance(stream, AmplemarketStream):
            stream.on_read_end = writer.stream_read
    try:
        tap.sync_all()
    finally:
        writer.end_streams()  # written by main's own flush if the read failed
    writer.flush()


def trace_error(exc: BaseException) -> Json:
    """A TRACE ERROR message for `exc` (its secrets are hidden as it is emitted)."""
    failure = describe_failure(exc)
    error: Json
    if failure is None:  # a bug: the details go to whoever fixes it
        error = {
            "message": f"source-amplemarket stopped on an unexpected error "
            f"({type(exc).__name__}): a bug, please report it with the log",
            "failure_type": "system_error",
            "internal_message": " ".join(str(exc).split()),
            "stack_trace": "".join(traceback.format_exception(exc)),
        }
    else:
        error = {"message": failure.message, "failure_type": failure.failure_type}
    return {
        "type": "TRACE",
        "trace": {"type": "ERROR", "emitted_at": time.time() * 1000, "error": error},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command and the files it reads, from `argv` (the process's arguments if None)."""
    parser = argparse.ArgumentParser(
        prog="source-amplemarket", description="Amplemarket source for Airbyte."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("spec", help="print the connector specification")
    for name, help_text in (
        ("check", "test the connection with one request"),
        ("discover", "print the catalog of streams"),
        ("read", "read the configured streams"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--config", required=True, help="config JSON file")
        if name == "read":
            command.add_argument("--catalog", required=True, help="configured catalog JSON file")
            command.add_argument("--state", help="state JSON file (Airbyte per-stream state)")
    return parser.parse_args(argv)


def setup_logging() -> None:
    """The Singer CLI's own logging setup (stderr, LOGLEVEL / TAP_AMPLEMARKET_LOGLEVEL).

    So both entry points log alike; the SDK runs it only inside its click command.
    """
    _setup_console_logging(log_level=_plugin_log_level(plugin_name=TapAmplemarket.name))
    sdk_logs.quiet(TapAmplemarket.logger)


def run_command(args: argparse.Namespace, writer: AirbyteWriter) -> None:
    """Run the command `args` name, its messages emitted by `writer`.

    The config's secrets are remembered as soon as it is read, before any line can show them.
    """
    if args.command == "spec":
        writer.emit(spec_message())
        return
    config = load_json(args.config, "config")
    if isinstance(config, dict):
        remember(config)  # from here on, redacted() hides them from every line
    if args.command == "check":
        check(config, writer)
    elif args.command == "discover":
        discover(config, writer)
    else:
        catalog = load_json(args.catalog, "catalog")
        state = load_json(args.state, "state") if args.state else None
        read(config, catalog, state, writer)
        writer.answered = True


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point `source-amplemarket`."""
    args = parse_args(argv)
    setup_logging()
    writer = AirbyteWriter()
    try:
        with checked_output():
            run_command(args, writer)
    except Interrupted as interrupted:  # SIGTERM/SIGINT: the last STATE emitted is the resume point
        if writer.answered:  # PyAirbyte stops a source once it has read the answer
            logger.info("Stopped by %s after answering", interrupted.signal_name)
        else:
            logger.error(
                "Interrupted by %s: the next read resumes from the last STATE",
                interrupted.signal_name,
            )
        writer.flush()
        # Die by the signal itself: Airbyte and PyAirbyte stop a connector with SIGTERM and take
        # death by it as expected (a shell still reports 128 + the signal number).
        signal.signal(interrupted.signum, signal.SIG_DFL)
        os.kill(os.getpid(), interrupted.signum)
    except Exception as exc:
        message = redacted_strings(trace_error(exc))  # secrets remembered: see run_command
        error = message["trace"]["error"]
        if "stack_trace" in error:
            logger.error("%s", error["stack_trace"].rstrip())
        logger.error("%s", error["message"])
        writer.emit(message)
        sys.exit(1)


if __name__ == "__main__":
    main()
