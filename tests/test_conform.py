"""conform.py: each coercion rule, what does not fit, and the test helper that checks it all."""

from __future__ import annotations

import copy
import json
import typing as t
from unittest.mock import ANY

import pytest

from tap_amplemarket import schemas
from tap_amplemarket.conform import EXTRA, Conformer, with_extra_column
from tap_amplemarket.tap import STREAM_TYPES
from tap_amplemarket.timefmt import normalize_datetime
from tests.conftest import assert_records_conform

KEEP = object()  # expected: the value passes unchanged
MOVED = object()  # expected: the value moves to _extra, the field becomes null


def conformer(properties: dict[str, t.Any], **kwargs: t.Any) -> tuple[Conformer, list[str]]:
    warnings: list[str] = []
    schema = with_extra_column({"type": "object", "properties": properties})
    kwargs.setdefault("primary_keys", ())
    return Conformer(schema, stream="s", warn=warnings.append, **kwargs), warnings


def conform_one(field_schema: dict[str, t.Any], value: t.Any) -> dict[str, t.Any]:
    """{"f": value} conformed; checked, as the tests check every record, against its schema."""
    schema = with_extra_column({"type": "object", "properties": {"f": field_schema}})
    conform = Conformer(schema, stream="s", warn=lambda _: None)
    record = conform({"f": copy.deepcopy(value)})
    assert record is not None
    assert_records_conform(
        [
            {"type": "SCHEMA", "stream": "s", "schema": schema},
            {"type": "RECORD", "stream": "s", "record": record},
        ]
    )
    return record


def check(field_schema: dict[str, t.Any], value: t.Any, expected: t.Any) -> None:
    record = conform_one(field_schema, value)
    if expected is MOVED:
        assert record == {"f": None, EXTRA: {"f": value}}
    else:
        assert record == {"f": value if expected is KEEP else expected}


INTEGER = {"type": ["integer", "null"]}
NUMBER = {"type": ["number", "null"]}
STRING = {"type": ["string", "null"]}
BOOLEAN = {"type": ["boolean", "null"]}
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
DATE = {"type": ["string", "null"], "format": "date"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, KEEP),
        (-3, KEEP),
        (2**70, KEEP),
        (None, KEEP),
        (12.0, 12),
        ("12", 12),
        ("-3", -3),
        ("12.0", 12),
        ("0", 0),
        (12.5, MOVED),
        (2.0**53 - 1, 2**53 - 1),
        (2.0**53, MOVED),  # no longer the integer it was written as: kept as it came
        (1e20, MOVED),
        ("12.5", MOVED),
        ("007", MOVED),
        (" 12", MOVED),
        ("1e3", MOVED),
        ("twelve", MOVED),
        (True, MOVED),
        ([12], MOVED),
    ],
)
def test_integer(value, expected):
    check(INTEGER, value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, KEEP),
        (2, KEEP),
        ("1.5", 1.5),
        ("-0.25e2", -25.0),
        ("12", 12),
        (float("nan"), MOVED),
        (float("inf"), MOVED),
        ("NaN", MOVED),
        ("Infinity", MOVED),
        ("1e999", MOVED),
        ("1,5", MOVED),
        (False, MOVED),
    ],
)
def test_number(value, expected):
    check(NUMBER, value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", KEEP),
        ("", KEEP),
        (15551234567, "15551234567"),
        (1.5, "1.5"),
        (True, MOVED),
        ([{"speaker": "rep"}], MOVED),
        ({"a": 1}, MOVED),
    ],
)
def test_string(value, expected):
    check(STRING, value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, KEEP),
        (False, KEEP),
        ("true", True),
        ("false", False),
        ("True", MOVED),
        ("yes", MOVED),
        (1, MOVED),
        (0, MOVED),
    ],
)
def test_boolean(value, expected):
    check(BOOLEAN, value, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-04-02T10:00:00Z", KEEP),
        ("2026-04-02T12:30:00+02:30", "2026-04-02T10:00:00Z"),
        ("2026-04-02T05:00:00-0500", "2026-04-02T10:00:00Z"),
        ("2026-04-02T10:00:00.5Z", "2026-04-02T10:00:00.500000Z"),
        ("2026-04-02t10:00:00z", "2026-04-02T10:00:00Z"),
        ("2026-04-02 10:00:00Z", "2026-04-02T10:00:00Z"),
        ("2026-04-02T10:00:00-00:00", "2026-04-02T10:00:00Z"),
        ("2026-04-02T10:00:00", "2026-04-02T10:00:00Z"),
        ("2026-04-02 10:00:00", "2026-04-02T10:00:00Z"),
        ("2026-04-02T10:00Z", "2026-04-02T10:00:00Z"),
        ("2026-04-02", "2026-04-02T00:00:00Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"),
        ("2025-13-45", MOVED),
        ("2025-02-30T00:00:00Z", MOVED),
        ("2026-04-02T24:00:00Z", MOVED),
        ("2026-04-02T10:00:00+24:00", MOVED),
        ("2026-04-02T10:00:00+05:75", MOVED),
        ("0001-01-01T00:00:00+01:00", MOVED),
        ("2026-04-02T10:00:00Z (estimated)", MOVED),
        ("2026-W14-4T10:00:00Z", MOVED),
        ("yesterday", MOVED),
        (1775124000, MOVED),
    ],
)
def test_date_time(value, expected):
    check(DATE_TIME, value, expected)


def test_date_time_digits_beyond_microseconds_are_truncated_and_the_original_kept():
    record = conform_one(DATE_TIME, "2026-04-02T10:00:00.123456789Z")

    assert record == {
        "f": "2026-04-02T10:00:00.123456Z",
        EXTRA: {"f": "2026-04-02T10:00:00.123456789Z"},
    }
    assert conform_one(DATE_TIME, "2026-04-02T10:00:00.123456000Z") == {
        "f": "2026-04-02T10:00:00.123456Z"
    }


def test_normalized_date_times_sort_as_their_instants():
    texts = ["2026-04-02T12:00:00+03:00", "2026-04-02T09:30:00Z", "2026-04-02 08:00:00-02:00"]
    normal = [normalize_datetime(text) for text in texts]

    assert normal == ["2026-04-02T09:00:00Z", "2026-04-02T09:30:00Z", "2026-04-02T10:00:00Z"]
    assert normalize_datetime("2026-02-29T00:00:00Z") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-20", KEEP),
        ("2026-02-30", MOVED),
        ("2026-05-20T00:00:00Z", MOVED),
        (20260520, MOVED),
    ],
)
def test_date(value, expected):
    check(DATE, value, expected)


def test_a_field_without_null_in_its_type_is_left_out_rather_than_nulled():
    conform, _ = conformer({"id": {"type": "string"}, "n": {"type": "integer"}})

    assert conform({"id": "a", "n": "many"}) == {"id": "a", EXTRA: {"n": "many"}}


def test_a_schema_without_a_type_takes_any_value():
    for value in ("x", 1, 1.5, None, [1], {"a": 1}, True):
        assert conform_one({}, value) == {"f": value}


def test_union_types_keep_an_exact_type_before_coercing():
    either = {"type": ["integer", "string"]}

    assert conform_one(either, "12") == {"f": "12"}
    assert conform_one(either, 12) == {"f": 12}
    assert conform_one(either, 12.0) == {"f": 12}
    assert conform_one(either, 12.5) == {"f": "12.5"}


CONTACT = {
    "type": ["object", "null"],
    "properties": {"id": {"type": ["string", "null"]}, "age": {"type": ["integer", "null"]}},
}


def test_nested_objects_are_conformed_and_unknown_keys_kept_by_path():
    record = conform_one(CONTACT, {"id": 7, "age": "41", "phone": "+1 555", "tags": ["a"]})

    assert record == {
        "f": {"id": "7", "age": 41},
        EXTRA: {"f.phone": "+1 555", "f.tags": ["a"]},
    }


@pytest.mark.parametrize("value", ["Jane Roe", ["Jane"], 3])
def test_an_object_field_that_is_not_an_object_moves_whole(value):
    check(CONTACT, value, MOVED)


def test_array_items_that_cannot_fit_are_removed_and_kept_by_index():
    mailboxes = {"type": ["array", "null"], "items": CONTACT}
    value = [{"id": "a"}, "junk", None, {"id": 5, "x": 1}, {"age": [1]}]

    assert conform_one(mailboxes, value) == {
        "f": [{"id": "a"}, None, {"id": "5"}, {"age": None}],
        EXTRA: {"f[1]": "junk", "f[3].x": 1, "f[4].age": [1]},
    }
    check(mailboxes, {"id": "a"}, MOVED)
    scalars = {"type": "array", "items": {"type": "integer"}}
    assert conform_one(scalars, [1, "2", "x", 3.5]) == {
        "f": [1, 2],
        EXTRA: {"f[2]": "x", "f[3]": 3.5},
    }


def test_an_array_that_fits_is_passed_as_it_is():
    conform, _ = conformer({"f": {"type": "array", "items": CONTACT}})
    value = [{"id": "a", "age": 3}, None]

    assert conform({"f": value})["f"] is value


def test_undeclared_fields_move_to_extra_and_ignored_ones_are_dropped_silently():
    conform, warnings = conformer({"id": {"type": "string"}}, ignored=("leads",))

    record = conform({"id": "a", "leads": [{"id": "l"}], "new": 1, EXTRA: {"api": "own"}})

    assert record == {"id": "a", EXTRA: {"new": 1, EXTRA: {"api": "own"}}}
    assert warnings == [
        "s: new: not declared in the schema; kept in _extra",
        "s: _extra: not declared in the schema; kept in _extra",
    ]


def test_a_record_that_fits_is_left_as_it_is_without_extra():
    conform, warnings = conformer({"id": {"type": "string"}, "n": INTEGER, "c": CONTACT})
    record = {"id": "a", "n": None, "c": {"id": None, "age": 3}}
    expected = json.loads(json.dumps(record))

    assert conform(record) == expected
    assert warnings == []


def test_one_warning_per_field_whatever_the_records_and_indices():
    schema = {"id": {"type": "string"}, "n": INTEGER, "m": {"type": "array", "items": CONTACT}}
    conform, warnings = conformer(schema)

    for number in range(3):
        conform({"id": str(number), "n": [number], "m": [{"x": 1}, {"x": 2}, "junk", "junk"]})

    assert warnings == [
        "s: n: an array does not fit type integer or null; kept in _extra",
        "s: m[].x: not declared in the schema; kept in _extra",
        "s: m[]: a string does not fit type object or null: removed from the array; kept in _extra",
    ]


def test_records_without_a_usable_primary_key_are_skipped_and_counted():
    conform, warnings = conformer(
        {"list_id": {"type": "string"}, "id": {"type": "string"}}, primary_keys=("list_id", "id")
    )

    assert conform({"list_id": "l", "id": 12}) == {"list_id": "l", "id": "12"}
    assert conform({"list_id": "l"}) is None
    assert conform({"list_id": "l", "id": None}) is None
    assert conform({"list_id": None, "id": "a"}) is None
    assert conform({"list_id": "l", "id": ["a"]}) is None
    conform.skip()  # e.g. a record that is not an object

    assert conform.skipped == 5
    assert len(warnings) == 1, "once, then a count"
    assert "s: skipping records without a usable primary key (list_id, id)" in warnings[0]
    assert conform.summary() == "s: skipped 5 record(s) without a usable primary key (list_id, id)"


def test_without_an_extra_column_what_does_not_fit_is_dropped_and_said_so():
    warnings: list[str] = []
    conform = Conformer(
        {"properties": {"id": {"type": "string"}, "n": INTEGER}}, stream="s", warn=warnings.append
    )

    assert conform({"id": "a", "n": "x", "new": 1}) == {"id": "a", "n": None}
    assert warnings == [
        "s: n: a string does not fit type integer or null; dropped: the schema has no _extra",
        "s: new: not declared in the schema; dropped: the schema has no _extra",
    ]


def test_an_unsupported_schema_type_fails_when_compiled():
    with pytest.raises(ValueError, match="unsupported JSON schema type 'decimal'"):
        conformer({"f": {"type": "decimal"}})


@pytest.mark.parametrize("stream_type", STREAM_TYPES, ids=lambda s: s.name)
def test_every_stream_schema_compiles_and_has_the_extra_column(stream_type):
    schema = schemas.SchemaFiles(schemas).get_schema(stream_type.name)

    assert schema["properties"][EXTRA] == {"type": ["object", "null"], "description": ANY}
    Conformer(schema, stream=stream_type.name, warn=print)


def test_a_date_time_below_the_top_level_is_normalised():
    conform, _ = conformer({"c": {"type": ["object", "null"], "properties": {"at": DATE_TIME}}})

    assert conform({"c": {"at": "2026-04-02T12:00:00+02:00"}}) == {
        "c": {"at": "2026-04-02T10:00:00Z"}
    }


def test_the_record_check_of_the_tests_can_fail():
    schema = with_extra_column({"type": "object", "properties": {"at": DATE_TIME, "c": CONTACT}})

    def records(*values: dict) -> list[dict]:
        return [
            {"type": "SCHEMA", "stream": "s", "schema": schema},
            *({"type": "RECORD", "stream": "s", "record": value} for value in values),
        ]

    assert_records_conform(records({"at": "2026-04-02T10:00:00Z", EXTRA: {"x": {"y": 1}}}))
    for bad in (
        {"new": 1},
        {"c": {"new": 1}},
        {"at": "2025-13-45"},
        {"at": "2026-04-02 10:00:00"},
        {"c": "Jane"},
    ):
        with pytest.raises(AssertionError, match="does not fit its SCHEMA"):
            assert_records_conform(records(bad))
    with pytest.raises(AssertionError, match="before any s SCHEMA"):
        assert_records_conform([{"type": "RECORD", "stream": "s", "record": {}}])


def test_fields_whose_names_hold_dots_or_brackets_keep_paths_of_their_own():
    conform, _ = conformer({"contact": {"type": ["object", "null"], "properties": {}}})

    record = conform({"contact": {"phone": "+1", "a.b": 2}, "contact.phone": "x", "l[0]": 3})

    assert record is not None
    assert record[EXTRA] == {
        "contact.phone": "+1",
        'contact["a.b"]': 2,
        '["contact.phone"]': "x",
        '["l[0]"]': 3,
    }
