"""The one home for reading and writing timestamps, with one behaviour on every supported Python.

Used by the tap, its streams, the conformer and the fake API.

- `read_instant` reads RFC 3339 and the common ISO 8601 forms the API or a user may send
  (offsets, `Z` or `z`, `T`, `t` or a space, no seconds, fractions, a leap second, a bare
  date); `parse_timestamp` is the same, raising ValueError.
- `isoformat_z` writes the API's own form, to the second; `format_datetime` writes the
  normal form of records, to the microsecond. Both are UTC with a `Z`, so that text order is
  time order.

Standard library only: the fake API's sample data imports it in PyAirbyte's test virtualenv,
which lacks the tap's dependencies.
"""

from __future__ import annotations

import datetime
import re

UTC = datetime.timezone.utc
#: The API's usual form: UTC, whole seconds (its text order is time order).
UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
#: Checks a calendar date and time without the "Z" (3.10's fromisoformat does not read it).
fromisoformat = datetime.datetime.fromisoformat
_DATE_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)"
    r"(?:[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?"
    r"([Zz]|[+-]\d\d(?::?\d\d)?)?)?"
)


def read_instant(text: str) -> tuple[datetime.datetime, bool] | None:
    """(the instant in UTC, whether it is exact) of a date-time; None if it is not one.

    Naive values (no offset) are UTC; a bare date is midnight UTC. Digits beyond
    microseconds are truncated: the instant is then not exact.
    """
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    fraction = fraction or ""
    microsecond = int(fraction[:6].ljust(6, "0"))
    leap = second == "60"  # a leap second: read as the last microsecond before the next one
    try:
        value = datetime.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            59 if leap else int(second or 0),
            999_999 if leap else microsecond,
            tzinfo=_zone(offset),
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # no such day or time; beyond year 1 to 9999 in UTC
        return None
    return value, not leap and not fraction[6:].strip("0")


def _zone(offset: str | None) -> datetime.tzinfo:
    if offset is None or offset in "Zz":
        return UTC
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if minutes >= 60:
        raise ValueError(offset)
    delta = datetime.timedelta(hours=hours, minutes=minutes)
    return datetime.timezone(-delta if offset[0] == "-" else delta)  # raises beyond 24 h


def parse_timestamp(value: str) -> datetime.datetime:
    """`value` as an aware UTC datetime (see `read_instant`). Raises ValueError."""
    instant = read_instant(value)
    if instant is None:
        msg = f"not an ISO 8601 date-time: {value!r}"
        raise ValueError(msg)
    return instant[0]


def isoformat_z(value: datetime.datetime) -> str:
    """`value` in UTC, to the second: the API's own form, whose text order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_datetime(value: datetime.datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS[.ffffff]Z` in UTC: the normal form of a record's date-time."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def normalize(text: str) -> tuple[str, bool] | None:
    """(`text` in the normal form, whether exactly), or None if it is not a date-time."""
    if UTC_SECONDS.fullmatch(text):
        # Already normal: only the calendar needs checking (2025-13-45 is not a date).
        try:
            fromisoformat(text[:-1])
        except ValueError:
            pass  # not a date, or a leap second: read_instant decides
        else:
            return text, True
    instant = read_instant(text)
    if instant is None:
        return None
    value, exact = instant
    return format_datetime(value), exact


def normalize_datetime(text: str) -> str | None:
    """`text` in the normal form, or None if it is not a date-time."""
    normal = normalize(text)
    return None if normal is None else normal[0]
