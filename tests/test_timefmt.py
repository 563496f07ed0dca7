"""timefmt.py: one reading of date-times for settings, state, records and the fake API, the
same on every supported Python (3.11's fromisoformat reads forms 3.10's does not)."""

from __future__ import annotations

import datetime

import pytest

from tap_amplemarket.timefmt import format_datetime, isoformat_z, parse_timestamp, read_instant

UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31T10:00:00Z", datetime.datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31t10:00:00z", datetime.datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31 12:00:00+02:00", datetime.datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T05:30-0430", datetime.datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31T10:00", datetime.datetime(2024, 1, 31, 10, tzinfo=UTC)),
        ("2024-01-31", datetime.datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31T10:00:00,5Z", datetime.datetime(2024, 1, 31, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_the_forms_read_alike_on_every_python(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "20240131T100000Z",  # ISO 8601 basic format: 3.11+ fromisoformat reads it, 3.10 not
        "2024-W05-3",  # a week date: likewise
        "2024-02-30T00:00:00Z",
        "2024-01-31T24:00:00Z",
        "2024-01-31T10:00:00+25:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "yesterday",
        "",
    ],
)
def test_what_is_not_a_date_time_is_refused(text):
    with pytest.raises(ValueError, match="not an ISO 8601 date-time"):
        parse_timestamp(text)


def test_digits_beyond_microseconds_are_read_but_marked_inexact():
    instant = read_instant("2024-01-31T10:00:00.1234567Z")

    assert instant == (datetime.datetime(2024, 1, 31, 10, 0, 0, 123456, tzinfo=UTC), False)
    assert read_instant("2024-01-31T10:00:00.1234560Z") is not None
    assert read_instant("2024-01-31T10:00:00.1234560Z")[1] is True


def test_both_written_forms_are_utc_with_z_so_text_order_is_time_order():
    value = datetime.datetime(
        2024, 1, 31, 12, 0, 0, 250000, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )

    assert isoformat_z(value) == "2024-01-31T10:00:00Z"
    assert format_datetime(value) == "2024-01-31T10:00:00.250000Z"
    assert parse_timestamp(format_datetime(value)) == value
