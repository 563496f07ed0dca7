"""What a config gets wrong, one line per error naming the setting and the fix.

The settings schema (`TapAmplemarket.config_jsonschema`) declares each setting's type,
default and bounds; `schema_errors` words what it rejects. `config_errors` checks what JSON
Schema cannot say: end_date after start_date, date-times (the SDK's validator does not check
formats), an api_url safe to send the key to, values sent as HTTP headers.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import re
import typing as t
from urllib.parse import urlparse

from singer_sdk.typing import DEFAULT_JSONSCHEMA_VALIDATOR

from tap_amplemarket.http import origin, shown_url
from tap_amplemarket.timefmt import parse_timestamp

#: start_date and end_date lie between these (far beyond, date arithmetic overflows).
EARLIEST_DATE = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
LATEST_DATE = datetime.datetime(2999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)

Schema = dict[str, t.Any]

#: How each JSON Schema bound reads in a sentence ("must be ...", "a value ...").
BOUND_WORDS = {
    "exclusiveMinimum": "greater than",
    "minimum": "at least",
    "exclusiveMaximum": "less than",
    "maximum": "at most",
}


def bounds(setting: Schema) -> str:
    """A setting's bounds in words ("greater than 0 and at most 3650"); "" if it has none."""
    return " and ".join(
        f"{words} {setting[key]}" for key, words in BOUND_WORDS.items() if key in setting
    )


def schema_errors(config: t.Mapping[str, t.Any], schema: Schema, plugin: str) -> list[str]:
    """What the settings schema rejects in `config`, one line each with its fix.

    The SDK's own lines quote the validator ("0 is less than the minimum of 1 in
    config['page_size']"); these say what to do.
    """
    errors = list(DEFAULT_JSONSCHEMA_VALIDATOR(schema).iter_errors(dict(config)))
    mistyped = {error.path[0] for error in errors if error.validator == "type" and error.path}
    lines = []
    for error in errors:
        name = error.path[0] if error.path else None
        if error.validator in BOUND_WORDS and name in mistyped:
            continue  # a bound of a value of the wrong type: the type error says it all
        lines.append(_worded(error, name, schema, plugin))
    return lines


_REQUIRED = re.compile(r"'(\w+)' is a required property")


def _worded(error: t.Any, name: t.Any, schema: Schema, plugin: str) -> str:
    """One jsonschema ValidationError as a line naming the setting and the fix."""
    if error.validator in BOUND_WORDS:
        return _out_of_bounds(name, error.instance, error.validator, schema["properties"][name])
    if error.validator == "type" and _number_as_text(error.instance, error.validator_value):
        kind = "integer" if "integer" in error.validator_value else "decimal"
        return (
            f"{name} is the text {error.instance!r}, not a number: in a Meltano project, "
            f"declare the setting with its kind (kind: {kind}; meltano-plugin.yml declares "
            "them all)"
        )
    if match := _REQUIRED.fullmatch(error.message):
        return _required(match.group(1), error.instance, plugin)
    where = f" in config[{']['.join(repr(index) for index in error.path)}]" if error.path else ""
    return f"{error.message}{where}"  # as the SDK words it


def _required(name: str, config: t.Any, plugin: str) -> str:
    """The line for a required setting not given, naming a key that is one typo from it."""
    typos = [key for key in config if one_typo_apart(str(key), name)]
    if typos:
        return f"{name} is not set, but {typos[0]!r} is: rename it to {name}"
    env = f"{plugin.upper().replace('-', '_')}_{name.upper()}"
    return (
        f"{name} is not set: set it (`meltano config set {plugin} {name}`, or the "
        f"environment variable {env} with --config ENV)"
    )


def _out_of_bounds(name: str, value: t.Any, bound: str, setting: Schema) -> str:
    limit = setting[bound]
    must = (
        "not be negative"
        if bound == "minimum" and limit == 0
        else f"be {BOUND_WORDS[bound]} {limit}"
    )
    default = f" ({setting['default']})" if "default" in setting else ""
    return (
        f"{name} must {must} (got {_shown(value)}): set a value {bounds(setting)}, or leave "
        f"it out for the default{default}"
    )


def _shown(value: t.Any) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"a number of {len(text.lstrip('-'))} digits"


def _number_as_text(value: t.Any, types: t.Any) -> bool:
    """Whether `value` is a number setting given as text.

    That is what Meltano passes for a setting whose kind its project does not declare
    (`meltano config set ... page_size 50`).
    """
    if not isinstance(value, str) or not {"integer", "number"} & set(types):
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def one_typo_apart(name: str, known: str) -> bool:
    """Whether `name` is `known` with one typo.

    A typo: a character wrong, missing, added, two neighbours swapped, or only its case
    changed.
    """
    a, b = name.casefold(), known.casefold()
    if a == b:
        return name != known
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        wrong = [i for i in range(len(a)) if a[i] != b[i]]
        swapped = len(wrong) == 2 and wrong[1] == wrong[0] + 1 and a[wrong[0]] == b[wrong[1]]
        return len(wrong) == 1 or (swapped and a[wrong[1]] == b[wrong[0]])
    shorter, longer = sorted((a, b), key=len)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def typo_of(name: str, schema: Schema) -> str | None:
    """The setting `name` is one typo away from, if it is not a setting itself."""
    known = schema["properties"]
    if name in known:
        return None
    return next((setting for setting in known if one_typo_apart(name, setting)), None)


def setting_name_typos(config: t.Mapping[str, t.Any], schema: Schema) -> list[str]:
    """A line per config key one typo away from a setting.

    A run would ignore such a key (a full sync for `start_dat`), so it stops, naming both,
    before any request.
    """
    return [
        f"Setting {name!r} is not a setting of the tap: did you mean {setting}? Rename it "
        "(the run would ignore it)"
        for name in sorted(config)
        if (setting := typo_of(name, schema)) is not None
    ]


def unknown_settings(config: t.Mapping[str, t.Any], schema: Schema) -> list[str]:
    """A warning per config key the tap does not read and that is no typo of a setting."""
    return [
        f"Unknown setting {name!r} is ignored"
        for name in sorted(config.keys() - set(schema["properties"]))
        if typo_of(name, schema) is None
    ]


def config_errors(config: t.Mapping[str, t.Any], schema: Schema) -> list[str]:
    """What the settings `schema` cannot check in `config`, one line each naming the setting."""
    return [
        *null_errors(config, schema),
        *header_value_errors(config),
        *date_errors(config),
        *api_url_errors(str(config.get("api_url", ""))),
    ]


def null_errors(config: t.Mapping[str, t.Any], schema: Schema) -> list[str]:
    """A line per null given for a setting with a default.

    The SDK's schema lets every optional setting be null, which here would mean no value at
    all, not the default.
    """
    properties = schema["properties"]
    return [
        f"{name} is null: give it a value, or leave it out for the default"
        for name, value in config.items()
        if value is None and "default" in properties.get(name, {})
    ]


def date_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """start_date and end_date: ISO 8601, between EARLIEST_DATE and LATEST_DATE, in order."""
    errors, dates = [], {}
    for name in ("start_date", "end_date"):
        if (value := config.get(name)) is None:
            continue
        try:
            dates[name] = parse_timestamp(str(value))
        except ValueError:
            errors.append(
                f"{name} {value!r} is not an ISO 8601 date-time: use e.g. 2024-01-31T00:00:00Z"
            )
    if len(dates) == 2 and dates["end_date"] <= dates["start_date"]:
        errors.append("end_date must be after start_date")
    errors.extend(
        f"{name} must be between {EARLIEST_DATE.year} and {LATEST_DATE.year} (got {config[name]})"
        for name, when in dates.items()
        if not EARLIEST_DATE <= when <= LATEST_DATE
    )
    return errors


def header_value_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """Settings sent as HTTP headers must be printable ASCII.

    A key pasted with a trailing newline would otherwise fail in `requests`, whose error
    quotes the header, key and all.
    """
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
    """Whether `host` is this machine (localhost or a loopback IP): plain http is safe there."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        return [f"api_url {shown_url(api_url)!r} has a query or fragment: give the base URL alone"]
    if scheme == "http" and not is_loopback(hostname):
        return [
            f"api_url {shown_url(api_url)!r} is plain http to another machine: the API key "
            "would cross the network unencrypted; use https://"
        ]
    return []
