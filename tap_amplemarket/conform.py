"""Making a record fit its stream's schema, losing nothing the API sent.

The API is untrusted input: one value of the wrong type, or a field no schema declares, makes a
target reject the record (and often the whole run). A stream's schema is compiled once into a
`Conformer` that walks every record field by field:

- a value of its declared type passes unchanged (a record that fits is left as it is);
- unambiguous, lossless coercions: integral strings and floats to integers, numeric strings to
  numbers, numbers to strings, "true"/"false" to booleans, date-times to UTC
  `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (so text order is time order, as bookmarks compare them);
- anything else, and every field the schema does not declare, moves to the record's `_extra`
  object under its JSON path ("transcript", "contact.phone", "mailboxes[2].id"); the field
  becomes null (a bad array item is removed from its array). One warning per stream and field.
- a record without its primary key cannot be upserted: it is skipped and counted.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import threading
import typing as t

from tap_amplemarket.secrets import redacted
from tap_amplemarket.timefmt import UTC_SECONDS, fromisoformat, normalize

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

#: The column that keeps what did not fit.
EXTRA = "_extra"
EXTRA_SCHEMA: dict[str, t.Any] = {
    "type": ["object", "null"],
    "description": (
        "Values the API sent that the schema does not declare or that do not fit their "
        'declared type, keyed by JSON path ("transcript", "contact.phone", '
        '"mailboxes[2].id"); null when every value fit.'
    ),
}

Record = dict[str, t.Any]
#: (value, its JSON path, the record's extras) -> the value conformed, or UNFIT.
Check = t.Callable[[t.Any, str, Record], t.Any]
#: (JSON path, what happened) -> None; called for every value that did not fit.
Note = t.Callable[[str, str], None]

UNFIT: t.Final = object()

_NONE = type(None)
_PYTHON_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),  # type(True) is bool, so booleans never pass as integers
    "number": frozenset({int}),  # floats are checked: no NaN or infinity
    "boolean": frozenset({bool}),
    "null": frozenset({_NONE}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
_ANY = frozenset().union(*_PYTHON_TYPES.values(), {float})
_KINDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    dict: "an object",
    list: "an array",
    _NONE: "null",
}
#: Floats are exact integers below this.
EXACT_FLOAT_INTEGERS = 2**53
_INDEX = re.compile(r"\[\d+\]")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?(?:0|[1-9]\d*)")
_INTEGRAL = re.compile(r"(-?(?:0|[1-9]\d*))(?:\.0+)?")
_BOOLEANS = {"true": True, "false": False}
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


# -- one value -------------------------------------------------------------------------------
def _to_integer(value: t.Any, path: str, extra: Record) -> t.Any:
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        # Beyond 2**53 a float is no longer the integer it was written as (the JSON parser
        # has rounded it already): keep it as it came rather than pass it off as exact.
        return int(value) if value.is_integer() and abs(value) < EXACT_FLOAT_INTEGERS else UNFIT
    if kind is str and (match := _INTEGRAL.fullmatch(value)):
        try:
            return int(match.group(1))
        except ValueError:  # more digits than Python converts
            return UNFIT
    return UNFIT


def _to_number(value: t.Any, path: str, extra: Record) -> t.Any:
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else UNFIT
    if kind is str and _JSON_NUMBER.fullmatch(value):
        try:
            number = int(value) if _INTEGER.fullmatch(value) else float(value)
        except ValueError:
            return UNFIT
        return number if math.isfinite(number) else UNFIT
    return UNFIT


def _to_string(value: t.Any, path: str, extra: Record) -> t.Any:
    kind = type(value)
    if kind is str:
        return value
    if kind is int or (kind is float and math.isfinite(value)):
        try:
            return str(value)  # e.g. a phone number sent as a number
        except ValueError:  # an integer of more digits than Python converts
            return UNFIT
    return UNFIT


def _to_boolean(value: t.Any, path: str, extra: Record) -> t.Any:
    if type(value) is bool:
        return value
    return _BOOLEANS.get(value, UNFIT) if type(value) is str else UNFIT


def _to_date(value: t.Any, path: str, extra: Record) -> t.Any:
    if type(value) is str and _DATE.fullmatch(value):
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            return UNFIT
        return value
    return UNFIT


_PLAIN_KEY = re.compile(r'[^.\[\]"]+')


def json_path(prefix: str, key: str) -> str:
    """The path of `key` under `prefix` ("" or "contact.") in _extra.

    A key that holds a dot, a bracket or a quote is written `["a.b"]`, so that no two fields
    share a path in _extra.
    """
    if _PLAIN_KEY.fullmatch(key):
        return prefix + key
    return f"{prefix.removesuffix('.')}[{json.dumps(key)}]"


class _Fields:
    """A compiled object schema: conforms a dict in place, extras under `prefix`."""

    def __init__(
        self, properties: dict[str, t.Any], note: Note, *, ignored: Iterable[str] = ()
    ) -> None:
        self.note = note
        self.ignored = frozenset(ignored)
        self.fields = {name: _Field(schema, note) for name, schema in properties.items()}
        #: Per field, the Python types taken as they are, without a call.
        self.fast = {name: field.fast for name, field in self.fields.items()}

    def conform(self, obj: Record, prefix: str, extra: Record) -> None:
        """Conform `obj` in place."""
        fast, fields = self.fast, self.fields
        look_at = [key for key, value in obj.items() if type(value) not in fast.get(key, ())]
        for key in look_at:
            value, field = obj[key], fields.get(key)
            path = json_path(prefix, key)
            if field is None:
                del obj[key]
                if key not in self.ignored:
                    extra[path] = value
                    self.note(path, "not declared in the schema")
                continue
            conformed = field.check(value, path, extra)
            if conformed is UNFIT:
                extra[path] = value
                self.note(path, field.misfit(value))
                if field.nullable:
                    obj[key] = None
                else:
                    del obj[key]
            elif conformed is not value:
                obj[key] = conformed

    def check(self, value: t.Any, path: str, extra: Record) -> t.Any:
        """A `Check` of a nested object."""
        if type(value) is not dict:
            return UNFIT
        self.conform(value, path + ".", extra)
        return value


class _Field:
    """A compiled schema of one value."""

    def __init__(self, schema: dict[str, t.Any], note: Note) -> None:
        self.note = note
        declared = schema.get("type")
        names = [declared] if isinstance(declared, str) else list(declared or [])
        self.format: str | None = schema.get("format")
        self.nullable = not names or "null" in names
        self.expected = " or ".join(
            f"{name} ({self.format})" if name == "string" and self.format else name
            for name in names
        )
        self.items: _Field | None = None
        fast: set[type] = set() if names else set(_ANY)
        checks: list[Check] = []
        for name in names:
            check, cheap = self._compile(name, schema)
            if check is not None:
                checks.append(check)
            if cheap:
                fast |= _PYTHON_TYPES[name]
        self.fast = frozenset(fast)
        self.check: Check = checks[0] if len(checks) == 1 else self._first_fit(checks)

    def _compile(self, name: str, schema: dict[str, t.Any]) -> tuple[Check | None, bool]:
        """(how other values are tried as `name`, whether its own type passes unchecked)."""
        if name == "string":
            if self.format == "date-time":
                return self._to_datetime, False
            if self.format == "date":
                return _to_date, False
            return _to_string, True
        if name == "object":
            if "properties" not in schema:
                return None, True  # free-form
            return _Fields(schema["properties"], self.note).check, False
        if name == "array":
            if "items" not in schema:
                return None, True
            self.items = _Field(schema["items"], self.note)
            return self._to_array, False
        simple: dict[str, Check | None] = {
            "integer": _to_integer,
            "number": _to_number,
            "boolean": _to_boolean,
            "null": None,
        }
        if name not in simple:
            msg = f"unsupported JSON schema type {name!r}"
            raise ValueError(msg)
        return simple[name], True

    @staticmethod
    def _first_fit(checks: Sequence[Check]) -> Check:
        def first_fit(value: t.Any, path: str, extra: Record) -> t.Any:
            for check in checks:
                conformed = check(value, path, extra)
                if conformed is not UNFIT:
                    return conformed
            return UNFIT

        return first_fit

    def misfit(self, value: t.Any) -> str:
        if type(value) is str and self.format:
            return f"a string that is not a valid {self.format}"
        return f"{_KINDS.get(type(value), 'a value')} does not fit type {self.expected}"

    def _to_datetime(self, value: t.Any, path: str, extra: Record) -> t.Any:
        if type(value) is not str:
            return UNFIT
        if UTC_SECONDS.fullmatch(value):  # the usual form, inlined: it is in every call
            try:
                fromisoformat(value[:-1])
            except ValueError:
                return UNFIT
            return value
        normal = normalize(value)
        if normal is None:
            return UNFIT
        text, exact = normal
        if not exact:
            extra[path] = value
            self.note(path, "has digits beyond microseconds: truncated, the original kept")
        return text

    def _to_array(self, value: t.Any, path: str, extra: Record) -> t.Any:
        if type(value) is not list:
            return UNFIT
        assert self.items is not None
        items, fast, check = self.items, self.items.fast, self.items.check
        conformed: list[t.Any] = []
        changed = False
        for index, element in enumerate(value):
            if type(element) in fast:
                conformed.append(element)
                continue
            where = f"{path}[{index}]"
            item = check(element, where, extra)
            if item is UNFIT:
                extra[where] = element  # removed from the array, kept here
                self.note(where, items.misfit(element) + ": removed from the array")
                changed = True
                continue
            changed |= item is not element
            conformed.append(item)
        return conformed if changed else value


# -- a record --------------------------------------------------------------------------------
class Conformer:
    """Makes each record of one stream fit its schema; compiled once, called per record."""

    def __init__(
        self,
        schema: dict[str, t.Any],
        *,
        stream: str,
        primary_keys: Sequence[str] = (),
        ignored: Iterable[str] = (),
        warn: Callable[[str], None],
    ) -> None:
        """`ignored`: top-level fields dropped silently (loaded elsewhere by design)."""
        self.stream = stream
        self.primary_keys = tuple(primary_keys)
        self.warn = warn
        properties = dict(schema.get("properties", {}))
        # Without an `_extra` column (e.g. a catalog saved before it existed) nothing can be
        # kept: say so, rather than emit a field the target was not told about.
        self.keeps_extra = properties.pop(EXTRA, None) is not None
        self.fate = "kept in _extra" if self.keeps_extra else "dropped: the schema has no _extra"
        self._fields = _Fields(properties, self._note, ignored=ignored)
        self._noted: set[str] = set()
        self._extra: Record = {}  # most records leave it empty: made anew only once used
        #: Records skipped for want of a primary key.
        self.skipped = 0
        self._skip_lock = threading.Lock()

    def __call__(self, record: Record) -> Record | None:
        """`record`, conformed in place; None if it has no usable primary key."""
        extra = self._extra
        self._fields.conform(record, "", extra)
        if extra:
            self._extra = {}
            if self.keeps_extra:
                record[EXTRA] = extra
        if any(record.get(key) is None for key in self.primary_keys):
            self.skip()
            return None
        return record

    def _note(self, path: str, what: str) -> None:
        field = _INDEX.sub("[]", path)
        if field in self.primary_keys:
            return  # the record is skipped, and counted, instead
        if field not in self._noted:
            self._noted.add(field)
            self.warn(f"{self.stream}: {redacted(field)}: {what}; {self.fate}")

    def skip(self) -> None:
        """Count (and warn about, once) a record that cannot be upserted (thread-safe)."""
        with self._skip_lock:
            self.skipped += 1
            first = self.skipped == 1
        if first:
            self.warn(
                f"{self.stream}: skipping records without a usable primary key "
                f"({', '.join(self.primary_keys)}): they cannot be upserted; "
                "a count follows at the end of the sync"
            )

    def summary(self) -> str | None:
        """One line counting the skipped records, if any."""
        if not self.skipped:
            return None
        return (
            f"{self.stream}: skipped {self.skipped} record(s) without a usable primary key "
            f"({', '.join(self.primary_keys)})"
        )


def with_extra_column(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """`schema` with the `_extra` column added."""
    return {**schema, "properties": {**schema.get("properties", {}), EXTRA: EXTRA_SCHEMA}}
