"""The checks of an incoming state: what the tap can resume from, and one line for the rest."""

from __future__ import annotations

import datetime
import typing as t

from tap_amplemarket.errors import BadStateError
from tap_amplemarket.secrets import redacted
from tap_amplemarket.settings import EARLIEST_DATE
from tap_amplemarket.streams import CallsStream
from tap_amplemarket.timefmt import format_datetime, isoformat_z, parse_timestamp

if t.TYPE_CHECKING:
    import logging

FIX = (
    "fix it, or clear it for a full sync (`meltano state clear <state id>`; in Airbyte, "
    "reset the connection)"
)


def checked_state(state: t.Any, logger: logging.Logger) -> dict[str, t.Any]:
    """`state` if the tap can resume from it, its calls bookmark checked.

    A calls bookmark in the future is clamped to now, one before EARLIEST_DATE dropped (each
    with a warning to `logger`).

    Raises BadStateError naming the stream and the value for anything else.
    """
    if message := wrapping_error(state) or shape_error(state):
        raise BadStateError(message)
    calls = state.get("bookmarks", {}).get(CallsStream.name, {})
    if calls.get("replication_key_value") is not None:
        clamp_calls_bookmark(calls, logger)
    return t.cast("dict[str, t.Any]", state)


def wrapping_error(state: t.Any) -> str | None:
    """What a state wrapped in a message or in Meltano's envelope is, and what to pass."""
    if not isinstance(state, dict):
        return None
    if state.get("type") == "STATE" and "value" in state:
        return f'The state is a Singer STATE message, not a state: pass its "value"; or {FIX}'
    if set(state) == {"singer_state"}:
        return (
            "The state is Meltano's wrapping of one (`meltano state get` prints it so): pass "
            f'what is inside "singer_state"; or {FIX}'
        )
    return None


def shape_error(state: t.Any) -> str | None:
    """Why `state` is not a Singer state of bookmarks, if it is not."""
    if not isinstance(state, dict) or not isinstance(state.get("bookmarks", {}), dict):
        return f"The state is not a Singer state object ({redacted(str(state), 80)!r}): {FIX}"
    if state and "bookmarks" not in state:
        return f"The state has no bookmarks (keys: {', '.join(map(str, state))}): {FIX}"
    for stream_name, stream_state in state.get("bookmarks", {}).items():
        if not is_bookmark(stream_state):
            message = f"The state of stream {stream_name} is not a bookmark ({stream_state!r})"
            return redacted(f"{message}: {FIX}", 500)
    return None


def is_bookmark(stream_state: t.Any) -> bool:
    """A stream's state as the SDK reads it: partitions each with a context, markers."""
    if not isinstance(stream_state, dict):
        return False
    partitions = stream_state.get("partitions", [])
    return (
        isinstance(partitions, list)
        and all(isinstance(p, dict) and isinstance(p.get("context"), dict) for p in partitions)
        and isinstance(stream_state.get("progress_markers", {}), dict)
    )


def clamp_calls_bookmark(calls: dict[str, t.Any], logger: logging.Logger) -> None:
    """Check the calls bookmark: move it into range, or write it in the normal form.

    Move one in the future to now, drop one before EARLIEST_DATE, write the rest in the
    normal form (the SDK's parser, and its text comparisons, read no other).
    """
    value = calls["replication_key_value"]
    # A bookmark without its key can only be the calls' own (the SDK would ignore it).
    key = calls.setdefault("replication_key", CallsStream.replication_key)
    bookmark = _bookmark_time(key, value)
    now = datetime.datetime.now(datetime.timezone.utc)
    if bookmark > now:
        logger.warning(
            "The state of stream calls has bookmark start_date=%s, in the future: "
            "syncing from now instead",
            value,
        )
        calls["replication_key_value"] = isoformat_z(now)
    elif bookmark < EARLIEST_DATE:
        logger.warning(
            "The state of stream calls has bookmark start_date=%s, before %d: syncing from "
            "start_date instead",
            value,
            EARLIEST_DATE.year,
        )
        del calls["replication_key_value"]
    else:
        calls["replication_key_value"] = format_datetime(bookmark)


def _bookmark_time(key: t.Any, value: t.Any) -> datetime.datetime:
    try:
        if key != CallsStream.replication_key:
            raise ValueError
        return parse_timestamp(str(value))
    except (ValueError, OverflowError):
        msg = (
            f"The state of stream calls has bookmark {key}={value!r}, not a start_date "
            f"date-time: {FIX}"
        )
        raise BadStateError(msg) from None
